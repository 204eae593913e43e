package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/tockhq/tock/sdk-go/worker"
	"github.com/tockhq/tock/sdk-go/worker/otelworker"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.As(err, new(usageError)):
		fmt.Fprintln(os.Stderr, "example:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "example:", err)
		os.Exit(1)
	}
}

// usageError is a bad command line.
type usageError struct{ error }

// run serves the example handlers until ctx is done.
func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("example", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:7403", "`address` to serve on: host:port or unix:///path")
	token := fs.String("token", os.Getenv("TOCK_APP_TOKEN"), "shared `token` the agent must send (default: $TOCK_APP_TOKEN)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments: %v", fs.Args())}
	}

	log := slog.New(slog.NewTextHandler(stderr, nil))
	w := worker.New(worker.Options{
		Token:  *token,
		Logger: log,
		// Spans go to the global tracer provider; this example installs none, so they are
		// dropped, but the handlers' contexts still carry the execution's trace.
		Interceptors: []worker.Interceptor{otelworker.NewInterceptor()},
	})
	register(w)

	lis, err := worker.Listen(*listen)
	if err != nil {
		return err
	}
	log.Info("example service listening on "+lis.Addr().String(), "address", lis.Addr().String())
	return w.Serve(ctx, lis)
}
