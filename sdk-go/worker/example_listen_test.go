package worker_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/tockhq/tock/sdk-go/worker"
	"github.com/tockhq/tock/sdk-go/worker/workertest"
	"google.golang.org/grpc/status"
)

// A worker can serve on a unix socket, which only processes on the same machine with access
// to the file can reach. Start the agent with --app-addr unix:///path/to/the.sock. A socket
// file left by an earlier process is removed; one that another process serves is an error.
func ExampleListen() {
	dir, _ := os.MkdirTemp("", "tock-example-")
	defer os.RemoveAll(dir)
	addr := "unix://" + filepath.Join(dir, "worker.sock")

	w := worker.New(worker.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	w.Handle("echo", func(_ context.Context, p []byte) ([]byte, error) { return p, nil })
	lis, err := worker.Listen(addr) // or "127.0.0.1:7403" for TCP
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- w.Serve(ctx, lis) }()

	agent, _ := workertest.Dial(addr, workertest.Options{})
	names, _ := agent.Handlers(context.Background())
	res, _ := agent.Run(context.Background(), workertest.Start{Handler: "echo", Payload: []byte(`"over a socket"`)})
	fmt.Println(names, string(res.Output))

	_ = agent.Close()
	stop()
	fmt.Println("stopped:", <-served)
	// Output:
	// [echo] "over a socket"
	// stopped: <nil>
}

// With Options.Token set, the worker accepts only calls that carry the same token, which the
// agent sends when started with --app-token (or $TOCK_APP_TOKEN).
func ExampleOptions_token() {
	w := worker.New(worker.Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Token:  "s3cret",
	})
	w.Handle("echo", func(_ context.Context, p []byte) ([]byte, error) { return p, nil })
	lis, _ := worker.Listen("127.0.0.1:0")
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- w.Serve(ctx, lis) }()

	for _, token := range []string{"s3cret", "guess", ""} {
		agent, _ := workertest.Dial(lis.Addr().String(), workertest.Options{Token: token})
		names, err := agent.Handlers(context.Background())
		fmt.Printf("token %q: %v %v\n", token, names, status.Code(err))
		_ = agent.Close()
	}
	stop()
	<-served
	// Output:
	// token "s3cret": [echo] OK
	// token "guess": [] Unauthenticated
	// token "": [] Unauthenticated
}
