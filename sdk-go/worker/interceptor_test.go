package worker_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tockhq/tock/sdk-go/worker"
	"github.com/tockhq/tock/sdk-go/worker/workertest"
)

// recorder notes what each interceptor sees, in order.
type recorder struct {
	mu    sync.Mutex // protects lines
	lines []string
}

func (r *recorder) add(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.lines...)
}

func (r *recorder) interceptor(name string) worker.Interceptor {
	return worker.InterceptorFunc(func(next worker.ExecuteFunc) worker.ExecuteFunc {
		return func(ctx context.Context, in worker.Payload) (worker.Payload, error) {
			exec, _ := worker.ExecutionFromContext(ctx)
			r.add("%s before %s %s %q", name, exec.Handler, in.ContentType, in.Data)
			out, err := next(ctx, in)
			r.add("%s after %s %v", name, out.ContentType, err)
			return out, err
		}
	})
}

func TestInterceptorOrder(t *testing.T) {
	t.Parallel()
	var rec recorder
	w := worker.New(worker.Options{
		Logger:       discardLogger(),
		Interceptors: []worker.Interceptor{rec.interceptor("A"), rec.interceptor("B"), worker.InterceptorBase{}},
	})
	w.Handle("bytes", func(_ context.Context, p []byte) ([]byte, error) {
		rec.add("handler %s", p)
		return p, nil
	})
	worker.HandleTyped(w, "typed", func(context.Context, struct{}) (string, error) {
		rec.add("typed handler")
		return "", errors.New("nope")
	})
	agent := serveAgent(t, w)

	res := run(t, agent, workertest.Start{Handler: "bytes", ContentType: "application/json", Payload: []byte(`{}`)})
	require.Equal(t, workertest.Succeeded, res.Outcome)
	require.Equal(t, []string{
		`A before bytes application/json "{}"`,
		`B before bytes application/json "{}"`,
		`handler {}`,
		`B after application/json <nil>`,
		`A after application/json <nil>`,
	}, rec.get())

	// Interceptors wrap typed handlers too, around the decoding, and see their errors.
	rec = recorder{}
	res = run(t, agent, workertest.Start{Handler: "typed"})
	require.Equal(t, workertest.Failed, res.Outcome)
	require.Equal(t, []string{
		`A before typed  ""`,
		`B before typed  ""`,
		`typed handler`,
		`B after  nope`,
		`A after  nope`,
	}, rec.get())

	// Executions refused before a handler is chosen do not reach the interceptors.
	rec = recorder{}
	res = run(t, agent, workertest.Start{Handler: "missing"})
	require.Equal(t, "UnknownHandler", res.Err.Kind)
	require.Empty(t, rec.get())
}

func TestInterceptorChangesOutcome(t *testing.T) {
	t.Parallel()
	translate := worker.InterceptorFunc(func(next worker.ExecuteFunc) worker.ExecuteFunc {
		return func(ctx context.Context, in worker.Payload) (worker.Payload, error) {
			out, err := next(ctx, in)
			if errors.Is(err, errNotFound) {
				return worker.Payload{}, worker.NonRetryable(err)
			}
			if err == nil && out.ContentType == "" {
				out.ContentType = "text/plain"
			}
			return out, err
		}
	})
	w := worker.New(worker.Options{Logger: discardLogger(), Interceptors: []worker.Interceptor{translate}})
	w.Handle("find", func(_ context.Context, p []byte) ([]byte, error) {
		if len(p) == 0 {
			return nil, fmt.Errorf("find: %w", errNotFound)
		}
		return p, nil
	})
	raw := worker.InterceptorFunc(func(worker.ExecuteFunc) worker.ExecuteFunc {
		return func(context.Context, worker.Payload) (worker.Payload, error) {
			return worker.Payload{Data: []byte("raw")}, nil
		}
	})
	w2 := worker.New(worker.Options{Logger: discardLogger(), Interceptors: []worker.Interceptor{raw}})
	w2.Handle("any", echo)

	agent := serveAgent(t, w)
	res := run(t, agent, workertest.Start{Handler: "find"})
	require.Equal(t, "find: not found", res.Err.Message)
	require.False(t, res.Err.Retryable)

	// An output without a content type gets one guessed from its bytes.
	res = run(t, serveAgent(t, w2), workertest.Start{Handler: "any", Payload: []byte("x")})
	require.Equal(t, "raw", string(res.Output))
	require.Equal(t, "application/octet-stream", res.ContentType)
}

var errNotFound = errors.New("not found")

func TestInterceptorPanics(t *testing.T) {
	t.Parallel()
	var rec recorder
	explode := worker.InterceptorFunc(func(next worker.ExecuteFunc) worker.ExecuteFunc {
		return func(ctx context.Context, in worker.Payload) (worker.Payload, error) {
			if string(in.Data) == "interceptor" {
				panic("interceptor exploded")
			}
			return next(ctx, in)
		}
	})
	w := worker.New(worker.Options{Logger: discardLogger(), Interceptors: []worker.Interceptor{rec.interceptor("A"), explode}})
	w.Handle("boom", func(_ context.Context, p []byte) ([]byte, error) { panic("handler exploded") })
	agent := serveAgent(t, w)

	// A handler's panic reaches the interceptors as an error.
	res := run(t, agent, workertest.Start{Handler: "boom"})
	require.Equal(t, "Panic", res.Err.Kind)
	require.Contains(t, res.Err.Message, "handler exploded")
	require.Contains(t, rec.get()[1], "A after  handler panicked: handler exploded")

	// An interceptor's own panic is recovered too.
	res = run(t, agent, workertest.Start{Handler: "boom", Payload: []byte("interceptor")})
	require.Equal(t, "Panic", res.Err.Kind)
	require.Contains(t, res.Err.Message, "interceptor exploded")
}

func TestInterceptorReturningNilPanics(t *testing.T) {
	t.Parallel()
	broken := worker.InterceptorFunc(func(worker.ExecuteFunc) worker.ExecuteFunc { return nil })
	w := worker.New(worker.Options{Interceptors: []worker.Interceptor{broken}})
	require.PanicsWithValue(t,
		`worker: interceptor worker.InterceptorFunc returned a nil ExecuteFunc for handler "x"`,
		func() { w.Handle("x", echo) })
}

func TestOptionsInterceptorsAreCopied(t *testing.T) {
	t.Parallel()
	var rec recorder
	ics := []worker.Interceptor{rec.interceptor("A")}
	w := worker.New(worker.Options{Logger: discardLogger(), Interceptors: ics})
	ics[0] = rec.interceptor("changed")
	w.Handle("echo", echo)
	run(t, serveAgent(t, w), workertest.Start{Handler: "echo"})
	require.Contains(t, rec.get()[0], "A before")
}
