package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// w0 measures the ceilings Tock's figures are compared with: how many one-row commits the
// PostgreSQL server takes per second (pgbench with 1, 8 and 32 clients), how late Go timers
// fire, and what a raw gRPC bidirectional stream carries over loopback.
type w0 struct{}

func (w0) ID() string   { return "W0" }
func (w0) Name() string { return "ceilings: pgbench commits, Go timer lateness, gRPC stream" }

// pgbenchClients are the client counts pgbench runs with.
var pgbenchClients = []int{1, 8, 32}

// ceilingDB is the database pgbench writes to.
const ceilingDB = "bench_ceiling"

func (w w0) Run(ctx context.Context, env *Env) ([]Result, error) {
	pgSecs, grpcDur, reps := 10, 5*time.Second, env.Reps
	if env.Quick {
		pgSecs, grpcDur, reps = 1, 500*time.Millisecond, 1
	}
	if err := env.PG.exec(ctx, "postgres", "DROP DATABASE IF EXISTS "+ceilingDB+" WITH (FORCE)", "CREATE DATABASE "+ceilingDB); err != nil {
		return nil, err
	}
	defer func() {
		_ = env.PG.exec(context.WithoutCancel(ctx), "postgres", "DROP DATABASE IF EXISTS "+ceilingDB+" WITH (FORCE)")
	}()
	if err := env.PG.exec(ctx, ceilingDB, `CREATE TABLE commits (
		id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		v int NOT NULL,
		at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return nil, err
	}
	script := filepath.Join(env.Dir, "pgbench-insert.sql")
	if err := os.WriteFile(script, []byte("INSERT INTO commits (v) VALUES (1);\n"), 0o644); err != nil {
		return nil, err
	}
	echo, err := startEcho()
	if err != nil {
		return nil, err
	}
	defer echo.stop()

	r := Result{Workload: "W0", Case: "ceilings", Title: "Ceilings of this machine"}
	for rep := range reps {
		tag := env.repTag("W0", "", rep)
		for _, n := range pgbenchClients {
			env.statusf(tag, "pgbench one-row INSERT, %s, %d s", plural(n, "client"), pgSecs)
			tps, err := runPgbench(ctx, env, script, n, pgSecs)
			if err != nil {
				return nil, err
			}
			r.add(fmt.Sprintf("pgbench_c%d", n), "pgbench commits, "+plural(n, "client"), "/s", "", tps)
		}

		env.statusf(tag, "Go timer lateness: 2000 timers over 2 s")
		r.addDist("timer_lateness", "Go timer lateness", "ms", [3]string{}, msSamples(timerLateness(2000, 2*time.Second)))
		env.statusf(tag, "Go timer burst: %d goroutines waiting for the same instant", burstGoroutines)
		r.addDist("timer_burst", fmt.Sprintf("Go timer burst (%d goroutines, one instant)", burstGoroutines), "ms", [3]string{},
			msSamples(timerBurst(burstGoroutines, 200*time.Millisecond)))

		env.statusf(tag, "gRPC bidirectional stream ping-pong, 1 stream, %s", grpcDur)
		rate, rtts, err := echo.pingPong(ctx, grpcDur)
		if err != nil {
			return nil, err
		}
		r.add("grpc_pingpong_rate", "gRPC stream ping-pong", "/s", "", rate)
		s := summarize(rtts)
		r.add("grpc_pingpong_p50", "gRPC ping-pong round trip p50", "µs", "", s.P50)
		r.add("grpc_pingpong_p99", "gRPC ping-pong round trip p99", "µs", "", s.P99)
		r.series("grpc_rtt", "gRPC stream ping-pong round trip", "µs").Reps =
			append(r.series("grpc_rtt", "gRPC stream ping-pong round trip", "µs").Reps, rtts)

		env.statusf(tag, "gRPC bidirectional stream pipelined, 1 stream, %s", grpcDur)
		piped, err := echo.pipelined(ctx, grpcDur)
		if err != nil {
			return nil, err
		}
		r.add("grpc_pipelined", "gRPC stream pipelined", "/s", "", piped)

		env.statusf(tag, "gRPC ping-pong on %d concurrent streams, %s", concurrentStreams, grpcDur)
		conc, err := echo.concurrent(ctx, concurrentStreams, grpcDur)
		if err != nil {
			return nil, err
		}
		r.add("grpc_concurrent", fmt.Sprintf("gRPC ping-pong, %d streams", concurrentStreams), "/s", "", conc)
	}
	med := func(k string) string {
		m := r.find(k)
		v, _, _ := m.Median()
		return strings.TrimSuffix(formatValue(v, m.Unit), "/s")
	}
	r.Summary = fmt.Sprintf("pgbench %s / %s / %s commits/s (1/8/32 clients); timer lateness p50 %s, p99 %s; "+
		"gRPC stream ping-pong %s round trips/s (p50 %s, p99 %s), pipelined %s msgs/s, %d streams %s round trips/s",
		med("pgbench_c1"), med("pgbench_c8"), med("pgbench_c32"), med("timer_lateness_p50"), med("timer_lateness_p99"),
		med("grpc_pingpong_rate"), med("grpc_pingpong_p50"), med("grpc_pingpong_p99"), med("grpc_pipelined"),
		concurrentStreams, med("grpc_concurrent"))
	r.Notes = append(r.Notes,
		fmt.Sprintf("pgbench: `pgbench -n -f insert.sql -c N -j N -T %d` over loopback TCP, the script one "+
			"`INSERT INTO commits (v) VALUES (1);` per transaction into a table with an identity primary key; "+
			"a CHECKPOINT before each run.", pgSecs),
		"Timers: 2,000 `time.AfterFunc` timers due 1 ms apart over 2 s; lateness is when the function ran minus when it was due.",
		fmt.Sprintf("Timer burst: %d goroutines each wait on a timer for the same instant, as W4's handlers of one cron "+
			"minute do; lateness is when each saw the time after waking minus the instant. The floor of W4's 10k-min "+
			"lateness distribution, for Go on this machine, before any work is done.", burstGoroutines),
		fmt.Sprintf("gRPC: an in-program bidirectional-stream echo service and its client in this process over loopback TCP, "+
			"128-byte messages (`wrapperspb.BytesValue`); ping-pong waits for each reply, pipelined sends without waiting "+
			"while another goroutine receives, %d streams each ping-pong on one connection.", concurrentStreams))
	return []Result{r}, nil
}

var (
	tpsRE = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)
)

// runPgbench runs the one-row INSERT script with n clients for secs seconds and returns the
// committed transactions per second.
func runPgbench(ctx context.Context, env *Env, script string, n, secs int) (float64, error) {
	if err := env.PG.exec(ctx, "postgres", "CHECKPOINT"); err != nil {
		return 0, err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(env.PG.bin, "pgbench"), "-n", "-f", script,
		"-c", strconv.Itoa(n), "-j", strconv.Itoa(n), "-T", strconv.Itoa(secs),
		"-h", "127.0.0.1", "-p", strconv.Itoa(env.PG.port), "-U", "postgres", ceilingDB)
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("pgbench -c %d: %w\n%s", n, err, out)
	}
	m := tpsRE.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("pgbench -c %d: no tps in its output:\n%s", n, out)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

// pgbenchVersion returns pgbench's version line.
func pgbenchVersion(ctx context.Context, bin string) string {
	out, err := exec.CommandContext(ctx, filepath.Join(bin, "pgbench"), "--version").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimPrefix(strings.TrimSpace(string(out)), "pgbench (PostgreSQL) ")
}

// plural renders "1 client", "8 clients".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// burstGoroutines is how many goroutines the timer burst wakes at one instant: W4's 10k-min.
const burstGoroutines = 10000

// timerBurst starts n goroutines that each wait on a timer of their own for the same instant,
// lead from now, and returns how late each one woke.
func timerBurst(n int, lead time.Duration) []time.Duration {
	late := make([]time.Duration, n)
	var wg sync.WaitGroup
	wg.Add(n)
	at := time.Now().Add(lead)
	for i := range n {
		go func() {
			defer wg.Done()
			t := time.NewTimer(time.Until(at))
			<-t.C
			late[i] = time.Since(at)
		}()
	}
	wg.Wait()
	return late
}

// timerLateness arms n timers due evenly over span and returns how late each one ran.
func timerLateness(n int, span time.Duration) []time.Duration {
	late := make([]time.Duration, n)
	var wg sync.WaitGroup
	wg.Add(n)
	start := time.Now()
	for i := range n {
		due := start.Add(span * time.Duration(i+1) / time.Duration(n))
		time.AfterFunc(time.Until(due), func() {
			late[i] = time.Since(due)
			wg.Done()
		})
	}
	wg.Wait()
	return late
}
