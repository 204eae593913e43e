package worker

import (
	"context"
	"fmt"
	"runtime/debug"
)

// Payload is a handler's input or output as interceptors see it: bytes and their media type.
type Payload struct {
	// Data is the bytes.
	Data []byte
	// ContentType is the media type of Data, such as "application/json" or
	// "application/x-protobuf". It may be empty: an input without a content type is treated as
	// JSON, and an output without one is reported as "application/json" when Data parses as
	// JSON and "application/octet-stream" otherwise.
	ContentType string
}

// ExecuteFunc runs one execution: the registered handler, or the next interceptor on the way
// to it. ctx carries the execution (see ExecutionFromContext), its deadline and its
// cancellation. A handler registered with Handle or HandleTyped is reached through an
// ExecuteFunc that decodes the input and encodes the output.
type ExecuteFunc func(ctx context.Context, in Payload) (Payload, error)

// Interceptor wraps the execution of every handler a Worker serves, for cross-cutting
// concerns such as tracing, metrics, logging or error translation. Register interceptors
// with Options.Interceptors.
//
// The first interceptor in Options.Interceptors is the outermost: with interceptors A and B,
// an execution runs A's code before next, then B's, then the handler, then B's code after
// next, then A's. Interceptors run on the handler's goroutine, inside the execution's
// context, after the payload arrived and before the result is sent; they do not run for
// executions refused before a handler is chosen (an unknown handler, or a worker that is
// shutting down).
//
// A handler's panic is recovered before it reaches the interceptors, which see it as an error
// whose message starts with "handler panicked". An interceptor may return its own error or
// change the output; the result reported is what the outermost interceptor returns.
//
// Implementations should embed InterceptorBase, so that they keep compiling when Interceptor
// gains methods; a single function can be adapted with InterceptorFunc.
type Interceptor interface {
	// InterceptExecute returns the ExecuteFunc that runs in place of next. It is called once
	// per handler, when the handler is registered, not once per execution.
	InterceptExecute(next ExecuteFunc) ExecuteFunc
}

// InterceptorBase implements every Interceptor method by doing nothing: each returns next
// unchanged. Embed it in an interceptor and override the methods it cares about.
type InterceptorBase struct{}

// InterceptExecute returns next.
func (InterceptorBase) InterceptExecute(next ExecuteFunc) ExecuteFunc { return next }

// InterceptorFunc adapts a function to an Interceptor that wraps executions.
type InterceptorFunc func(next ExecuteFunc) ExecuteFunc

// InterceptExecute calls f(next).
func (f InterceptorFunc) InterceptExecute(next ExecuteFunc) ExecuteFunc { return f(next) }

// chain wraps fn in the interceptors, the first outermost. It panics when an interceptor
// returns nil, a programming error found when the handler is registered.
func chain(name string, interceptors []Interceptor, fn ExecuteFunc) ExecuteFunc {
	h := recovering(fn)
	for i := len(interceptors) - 1; i >= 0; i-- {
		h = interceptors[i].InterceptExecute(h)
		if h == nil {
			panic(fmt.Sprintf("worker: interceptor %T returned a nil ExecuteFunc for handler %q", interceptors[i], name))
		}
	}
	return h
}

// recovering turns a panic in fn into a *panicError, so that interceptors see it as an error.
func recovering(fn ExecuteFunc) ExecuteFunc {
	return func(ctx context.Context, in Payload) (out Payload, err error) {
		defer func() {
			if r := recover(); r != nil {
				out, err = Payload{}, &panicError{value: r, stack: debug.Stack()}
			}
		}()
		return fn(ctx, in)
	}
}

// bytesHandler adapts a HandlerFunc: it receives the input bytes, and its output's content type
// is guessed from the bytes.
func bytesHandler(fn HandlerFunc) ExecuteFunc {
	return func(ctx context.Context, in Payload) (Payload, error) {
		out, err := fn(ctx, in.Data)
		if err != nil {
			return Payload{}, err
		}
		return Payload{Data: out, ContentType: contentTypeOf(out)}, nil
	}
}
