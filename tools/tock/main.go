package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := NewMain(os.Stdin, os.Stdout, os.Stderr).Run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// Exit codes of Run.
const (
	exitOK    = 0 // the command succeeded
	exitError = 1 // a call or a local operation failed
	exitUsage = 2 // the command line was wrong
)

// Main is one run of the tock command: its streams, its environment, and how it connects to
// the control plane.
type Main struct {
	// Stdin is read by "-f -" and "--payload-file -"; default empty.
	Stdin io.Reader
	// Stdout receives command output; default discarded.
	Stdout io.Writer
	// Stderr receives errors; default discarded.
	Stderr io.Writer
	// Getenv reads the environment (TOCK_SERVER, TOCK_TOKEN); default os.Getenv.
	Getenv func(string) string
	// Now is the clock used for the elapsed time of running executions; default time.Now.
	Now func() time.Time
	// Connect opens a client of the control plane; default Dial.
	Connect func(cfg ConnConfig) (*Client, error)
}

// NewMain returns a Main on the given streams that reads the process environment and dials
// the control plane over gRPC.
func NewMain(stdin io.Reader, stdout, stderr io.Writer) *Main {
	return &Main{
		Stdin:   stdin,
		Stdout:  stdout,
		Stderr:  stderr,
		Getenv:  os.Getenv,
		Now:     time.Now,
		Connect: Dial,
	}
}

// Run runs the command line args (without the program name) and returns the process exit
// code. Errors are printed to Stderr.
func (m *Main) Run(ctx context.Context, args []string) int {
	a := &app{main: m.withDefaults()}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(a.main.Stdin)
	root.SetOut(a.main.Stdout)
	root.SetErr(a.main.Stderr)

	cmd, err := root.ExecuteContextC(ctx)
	if cerr := a.close(); cerr != nil && err == nil {
		err = cerr
	}
	if err == nil {
		return exitOK
	}
	return a.report(cmd, err)
}

// withDefaults returns a copy of m with its unset fields at their defaults: no input,
// discarded output, the process environment, the system clock, Dial.
func (m *Main) withDefaults() *Main {
	c := *m
	if c.Stdin == nil {
		c.Stdin = strings.NewReader("")
	}
	if c.Stdout == nil {
		c.Stdout = io.Discard
	}
	if c.Stderr == nil {
		c.Stderr = io.Discard
	}
	if c.Getenv == nil {
		c.Getenv = os.Getenv
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Connect == nil {
		c.Connect = Dial
	}
	return &c
}

// report prints err to Stderr and returns the exit code it calls for. Errors raised before
// a command's own code ran (cobra's flag and argument checks, global flag validation) and
// errors marked as usage errors are usage errors.
func (a *app) report(cmd *cobra.Command, err error) int {
	var uerr *usageError
	if errors.As(err, &uerr) || !a.ran {
		path := "tock"
		if cmd != nil {
			path = cmd.CommandPath()
		}
		fmt.Fprintf(a.main.Stderr, "tock: %s\nRun '%s --help' for usage.\n", err, path)
		return exitUsage
	}
	fmt.Fprintln(a.main.Stderr, formatError(err))
	return exitError
}
