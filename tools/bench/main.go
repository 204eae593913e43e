package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	var code int
	if os.Getenv(roleEnv) == roleHandler {
		code = handlerServiceMain(ctx)
	} else {
		code = NewMain().Run(ctx, os.Args[1:])
	}
	stop()
	os.Exit(code)
}

// Main is the benchmark program's command line.
type Main struct {
	Stdout, Stderr io.Writer
}

// NewMain returns the command wired to the process's output.
func NewMain() *Main { return &Main{Stdout: os.Stdout, Stderr: os.Stderr} }

// options are the parsed command line.
type options struct {
	quick     bool
	reps      int
	out       string
	keep      bool
	list      bool
	timeout   time.Duration
	tockdArgs string
	cases     string
	ids       []workload
}

const usage = `Usage: go run ./tools/bench [flags] [workload ids…]

Runs Tock's benchmarks (BENCHMARKS.md) against a PostgreSQL server it starts from the
installed binaries, with tockd, tock-agent and a handler service as processes. Without ids it
runs every implemented workload. Status lines go to stderr; the summary, one line per
workload case, to stdout; CSV, SVG plots and results.md to -out.

Flags:
`

func (m *Main) parse(args []string) (*options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
		fmt.Fprintln(fs.Output(), "\nWorkloads:")
		for _, w := range workloads() {
			fmt.Fprintf(fs.Output(), "  %-4s %s\n", w.ID(), w.Name())
		}
	}
	var o options
	fs.BoolVar(&o.quick, "quick", false, "scale every workload down so that the whole set finishes in under two minutes")
	fs.IntVar(&o.reps, "reps", 3, "repetitions of every measurement (at least 1; figures are medians with min and max)")
	fs.StringVar(&o.out, "out", "", "output `folder` (default tools/bench/out in the repository)")
	fs.BoolVar(&o.keep, "keep", false, "keep the run's temporary folder (logs, database) instead of removing it")
	fs.BoolVar(&o.list, "list", false, "list the workloads and exit")
	fs.DurationVar(&o.timeout, "timeout", 0, "stop the run after this long (default 10m with -quick, 3h otherwise)")
	fs.StringVar(&o.tockdArgs, "tockd-args", "", "extra `arguments` for every tockd, space-separated")
	fs.StringVar(&o.cases, "cases", "", "run only these `cases` of the workloads named, comma-separated (W2: 100, 1k, 5k, 10k; W4: 10k-min, 1k-sec, 100k-min, asynq-10k-min, asynq-1k-sec, asynq-100k-min; W5: 100k, asynq-100k; W7: replica-kill, agent-kill, pg-restart; W9: off, 1pct, 100pct; W10: go, python; -quick has smaller cases)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if o.reps < 1 {
		return nil, fmt.Errorf("-reps %d: must be at least 1", o.reps)
	}
	if o.timeout <= 0 {
		o.timeout = 3 * time.Hour
		if o.quick {
			o.timeout = 10 * time.Minute
		}
	}
	all := workloads()
	if fs.NArg() == 0 {
		o.ids = all
	}
	for _, id := range fs.Args() {
		found := false
		for _, w := range all {
			if strings.EqualFold(w.ID(), id) {
				o.ids = append(o.ids, w)
				found = true
			}
		}
		if !found {
			var ids []string
			for _, w := range all {
				ids = append(ids, w.ID())
			}
			return nil, fmt.Errorf("unknown workload %q: choose from %s", id, strings.Join(ids, ", "))
		}
	}
	return &o, nil
}

// Run runs the benchmark and returns the exit code: 0 when every workload ran, 1 when one
// failed, 2 for a bad command line.
func (m *Main) Run(ctx context.Context, args []string) int {
	o, err := m.parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(m.Stderr, "bench:", err)
		return 2
	}
	if o.list {
		for _, w := range workloads() {
			fmt.Fprintf(m.Stdout, "%-4s %s\n", w.ID(), w.Name())
		}
		return 0
	}
	if err := m.run(ctx, o, args); err != nil {
		fmt.Fprintln(m.Stderr, "bench:", err)
		return 1
	}
	return 0
}

func (m *Main) run(ctx context.Context, o *options, args []string) (err error) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	root, err := repoRoot()
	if err != nil {
		return err
	}
	out := o.out
	if out == "" {
		out = filepath.Join(root, "tools", "bench", "out")
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "tock-bench-")
	if err != nil {
		return err
	}
	env := &Env{Quick: o.quick, Reps: o.reps, Root: root, Dir: dir, Out: out, Machine: probeMachine(),
		TockdArgs: strings.Fields(o.tockdArgs), Cases: splitList(o.cases), stderr: m.Stderr}
	defer func() {
		if o.keep || err != nil {
			fmt.Fprintf(m.Stderr, "bench: the run's logs and data are kept in %s\n", dir)
			return
		}
		_ = os.RemoveAll(dir)
	}()

	env.statusf("setup", "starting PostgreSQL (fsync=on, synchronous_commit=on, full_page_writes=on)")
	pg, err := startPostgres(ctx, dir)
	if err != nil {
		return fmt.Errorf("start PostgreSQL: %w", err)
	}
	env.PG = pg
	defer func() {
		if serr := pg.stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	env.Machine.DataFS = fileSystemOf(pg.data)
	env.Machine.Postgres = pg.version
	env.Machine.Pgbench = pgbenchVersion(ctx, pg.bin)
	env.Machine.Tock = gitDescribe(ctx, root)
	if env.Machine.Settings, err = pg.settings(ctx); err != nil {
		return err
	}
	for _, line := range env.Machine.header() {
		fmt.Fprintln(m.Stderr, line)
	}

	rp := &report{machine: env.Machine, command: strings.TrimSpace("go run ./tools/bench " + strings.Join(args, " ")),
		reps: o.reps, quick: o.quick}
	var failed []string
	for _, w := range o.ids {
		env.statusf(w.ID(), "%s (load average %s)", w.Name(), loadAverage())
		start := time.Now()
		results, werr := w.Run(ctx, env)
		if werr != nil {
			msg := fmt.Sprintf("%s: %v", w.ID(), werr)
			failed = append(failed, msg)
			rp.failures = append(rp.failures, msg)
			env.statusf(w.ID(), "failed: %v", werr)
		}
		if len(results) > 0 {
			if err := writeWorkload(out, w.ID(), results); err != nil {
				return err
			}
			rp.results = append(rp.results, results...)
		}
		env.statusf(w.ID(), "done in %s", time.Since(start).Round(time.Second))
		if ctx.Err() != nil {
			break
		}
	}
	if err := os.WriteFile(filepath.Join(out, "results.md"), []byte(rp.markdown()), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(m.Stderr, "bench: results in %s\n", out)
	for _, r := range rp.results {
		fmt.Fprintln(m.Stdout, r.summaryLine())
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d workload(s) failed:\n%s", len(failed), strings.Join(failed, "\n"))
	}
	return nil
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// repoRoot returns the root of the Tock repository: the nearest folder at or above the
// working directory whose go.mod declares the module github.com/tockhq/tock.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/tockhq/tock\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run the benchmark inside the Tock repository (no go.mod of github.com/tockhq/tock found above the working directory)")
		}
		dir = parent
	}
}
