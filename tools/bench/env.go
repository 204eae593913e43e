package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Env is what a workload runs in: the run's settings, the machine, and the PostgreSQL server
// shared by Tock and every peer in the run.
type Env struct {
	// Quick makes every workload small, for a run of under two minutes in all.
	Quick bool
	// Reps is how many times each figure is measured.
	Reps int
	// Root is the repository's root folder; Dir the run's temporary folder (logs, binaries,
	// the database); Out the output folder.
	Root, Dir, Out string
	// Machine is where the run happens.
	Machine machine
	// PG is the run's PostgreSQL server.
	PG *postgres
	// TockdArgs are extra arguments for every tockd started.
	TockdArgs []string
	// Cases, when not empty, names the cases to run of workloads that have several.
	Cases []string

	stderr io.Writer

	buildOnce sync.Once
	buildErr  error
	bins      binaries
}

// binaries are the programs a Tock cluster is made of.
type binaries struct {
	tockd, agent, self string
}

// statusf prints a status line on stderr: "[15:04:05 W4 rep 2/3] waiting for fires 6000/10000".
func (e *Env) statusf(tag, format string, args ...any) {
	fmt.Fprintf(e.stderr, "[%s %s] %s\n", time.Now().Format("15:04:05"), tag, fmt.Sprintf(format, args...))
}

// selectCases returns the cases of names that e.Cases lists, or all of them when it is
// empty; -cases may name the cases of several workloads at once. It fails when e.Cases names
// none of them.
func (e *Env) selectCases(names []string) ([]string, error) {
	if len(e.Cases) == 0 {
		return names, nil
	}
	var chosen []string
	for _, c := range e.Cases {
		if slices.Contains(names, c) {
			chosen = append(chosen, c)
		}
	}
	if len(chosen) == 0 {
		return nil, fmt.Errorf("-cases: none of %s is a case here; the cases are %s",
			strings.Join(e.Cases, ", "), strings.Join(names, ", "))
	}
	return chosen, nil
}

// quickReps is how many repetitions a workload runs: env.Reps, or one with -quick, whose
// figures only show that the workload works.
func quickReps(e *Env) int {
	if e.Quick {
		return 1
	}
	return e.Reps
}

// repTag is the status tag of repetition rep (from 0) of a workload case.
func (e *Env) repTag(id, c string, rep int) string {
	if c != "" {
		id += " " + c
	}
	return fmt.Sprintf("%s rep %d/%d", id, rep+1, e.Reps)
}

// binaries builds tockd and tock-agent from this repository, once per run, and finds this
// program (which is also the bench handler service).
func (e *Env) binaries(ctx context.Context) (binaries, error) {
	e.buildOnce.Do(func() {
		dir := filepath.Join(e.Dir, "bin")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			e.buildErr = err
			return
		}
		for _, b := range []struct{ out, pkg string }{
			{"tockd", "./controlplane/cmd/tockd"},
			{"tock-agent", "./agent/cmd/tock-agent"},
		} {
			e.statusf("build", "go build %s", b.pkg)
			cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, b.out), b.pkg)
			cmd.Dir = e.Root
			if out, err := cmd.CombinedOutput(); err != nil {
				e.buildErr = fmt.Errorf("go build %s: %w\n%s", b.pkg, err, strings.TrimSpace(string(out)))
				return
			}
		}
		self, err := os.Executable()
		if err != nil {
			e.buildErr = fmt.Errorf("find this program for the handler service: %w", err)
			return
		}
		e.bins = binaries{tockd: filepath.Join(dir, "tockd"), agent: filepath.Join(dir, "tock-agent"), self: self}
	})
	return e.bins, e.buildErr
}
