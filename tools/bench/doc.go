// Command bench is Tock's benchmark program: the only place Tock's performance is measured
// (BENCHMARKS.md). Every figure is measured -reps times (default 3) and reported as the
// median with the minimum and maximum, next to the machine it was measured on and the
// ceilings of that machine measured in the same run.
//
//	go run ./tools/bench [-quick] [-reps N] [-out DIR] [-cases a,b] [workload ids…]
//
// The program sets up everything it measures:
//
//	go run ./tools/bench
//	  ├─ PostgreSQL (initdb + postgres from the installed binaries, in a temporary folder on
//	  │  disk, fsync=on, synchronous_commit=on, full_page_writes=on; as the postgres user
//	  │  when run as root). One server per run, shared by Tock and every peer.
//	  ├─ pgbench against it (W0)
//	  └─ per workload case, on a database of its own:
//	       tockd (go build of this repository, production mode, --store postgres://…)
//	         ⇄ tock-agent (go build, --register with tockd's built-in registry)
//	             ⇄ bench handler service (this program again, TOCK_BENCH_ROLE=handler-service:
//	               sdk-go/worker serving "noop", which notes the instant it started)
//
// The handler service's notes, read over HTTP on loopback, are the ground truth for latency
// and lateness (handler start minus trigger or nominal time, all on this machine's clock) and
// for runs that were missed or repeated; the public API (fires and executions) is checked
// against them.
//
// A workload implements the workload interface (ID, Name, Run) and is listed in
// workloads(); Run does its own repetitions and returns one Result per case, with Metrics
// (one value per repetition) and Series (sample distributions, plotted as percentile
// spectra). The program writes, into -out (default tools/bench/out, ignored by git):
// <id>.csv (every figure per repetition, median, min, max), <id>-samples.csv (every sample),
// one SVG per distribution, and results.md (the machine, the command, the tables, the ratios
// to the ceilings), and prints one summary line per workload case on stdout.
package main
