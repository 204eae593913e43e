package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	handlerv1 "github.com/tockhq/tock/proto/tock/handler/v1"
)

// errStreamClosed is the cause given to handler contexts when their Execute stream ends.
var errStreamClosed = errors.New("execute stream closed")

// service implements tock.handler.v1.HandlerService for a Worker.
type service struct {
	handlerv1.UnimplementedHandlerServiceServer
	w *Worker
}

// ListHandlers returns the registered handler names.
func (s *service) ListHandlers(context.Context, *handlerv1.ListHandlersRequest) (*handlerv1.ListHandlersResponse, error) {
	names := s.w.handlerNames()
	infos := make([]*handlerv1.HandlerInfo, len(names))
	for i, name := range names {
		infos[i] = &handlerv1.HandlerInfo{Name: name}
	}
	return &handlerv1.ListHandlersResponse{Handlers: infos, Sdk: "tock-go/" + Version}, nil
}

// Execute serves one Execute stream; see stream.
func (s *service) Execute(gs handlerv1.HandlerService_ExecuteServer) error {
	return newStream(s.w, gs).serve()
}

// stream is one Execute stream from the agent. Its reader goroutine receives Start and Cancel
// messages and runs each handler in a goroutine of its own; the goroutine serving the RPC is
// the only one that calls Send, taking messages from out.
type stream struct {
	w   *Worker
	gs  handlerv1.HandlerService_ExecuteServer
	log *slog.Logger
	out *sendQueue

	// ctx is the parent of every execution's context; it is cancelled when the stream ends
	// or the worker's shutdown timeout passes.
	ctx    context.Context
	cancel context.CancelCauseFunc

	mu    sync.Mutex // protects execs
	execs map[string]*execution

	handlers sync.WaitGroup // handler goroutines
}

func newStream(w *Worker, gs handlerv1.HandlerService_ExecuteServer) *stream {
	ctx, cancel := context.WithCancelCause(gs.Context())
	return &stream{
		w:      w,
		gs:     gs,
		log:    w.log,
		out:    newSendQueue(),
		ctx:    ctx,
		cancel: cancel,
		execs:  make(map[string]*execution),
	}
}

// serve runs the stream until the agent closes it, sending fails, or the worker ends every
// stream at shutdown.
func (s *stream) serve() error {
	stopForce := context.AfterFunc(s.w.force, func() { s.cancel(context.Cause(s.w.force)) })
	defer stopForce()
	defer s.cancel(errStreamClosed)

	readDone := make(chan error, 1)
	s.w.wg.Add(1)
	go func() {
		defer s.w.wg.Done()
		readDone <- s.read()
	}()

	for {
		select {
		case <-s.out.ready:
			if err := s.flush(); err != nil {
				return err
			}
		case err := <-readDone:
			// Every handler has returned: send their results while the agent still listens.
			if ferr := s.flush(); ferr != nil || errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case <-s.w.endStreams:
			_ = s.flush()
			return nil
		}
	}
}

// flush sends every queued message.
func (s *stream) flush() error {
	for _, m := range s.out.take() {
		if err := s.gs.Send(m); err != nil {
			return fmt.Errorf("send to agent: %w", err)
		}
	}
	return nil
}

// read receives until the stream ends, then cancels the stream's handlers and waits for them.
func (s *stream) read() error {
	defer s.handlers.Wait()
	for {
		req, err := s.gs.Recv()
		if err != nil {
			s.cancel(errStreamClosed)
			return err
		}
		switch k := req.GetKind().(type) {
		case *handlerv1.ExecuteRequest_Start:
			s.start(k.Start)
		case *handlerv1.ExecuteRequest_Cancel:
			s.cancelExecution(k.Cancel)
		default:
			s.log.Warn("ignoring unknown message from agent", "type", fmt.Sprintf("%T", k))
		}
	}
}

// start runs the handler for one execution, or reports at once why it cannot run.
func (s *stream) start(m *handlerv1.Start) {
	info := executionFromProto(m)
	if info.ID == "" {
		s.log.Warn("ignoring Start without an execution id", "handler", info.Handler)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.execs[info.ID]; dup {
		s.log.Warn("ignoring duplicate Start for a running execution", "execution_id", info.ID)
		return
	}
	fn, adm := s.w.admit(info.Handler)
	switch adm {
	case refusedShuttingDown:
		s.out.push(failure(info.ID, &handlerv1.Error{
			Message:   "the worker is shutting down and takes no new executions",
			Kind:      kindShuttingDown,
			Retryable: true,
		}))
		return
	case refusedUnknownHandler:
		s.out.push(failure(info.ID, &handlerv1.Error{
			Message: fmt.Sprintf("no handler named %q is registered", info.Handler),
			Kind:    kindUnknownHandler,
			Cause:   handlerv1.ErrorCause_ERROR_CAUSE_UNKNOWN_HANDLER,
		}))
		return
	}

	ctx, cancel := context.WithCancelCause(s.ctx)
	ex := &execution{info: info, out: s.out, cancel: cancel, log: s.w.baseLog}
	release := func() { cancel(nil) }
	if !info.Deadline.IsZero() {
		var cancelDeadline context.CancelFunc
		ctx, cancelDeadline = context.WithDeadline(ctx, info.Deadline)
		release = func() { cancelDeadline(); cancel(nil) }
	}
	ctx = context.WithValue(ctx, execKey{}, ex)
	ctx = withTraceContext(ctx, m.GetTraceContext())
	s.execs[info.ID] = ex
	s.handlers.Add(1)
	var startAt time.Time
	if m.GetStartTime() != nil {
		startAt = m.GetStartTime().AsTime()
	}
	go s.run(ctx, ex, fn, Payload{Data: m.GetPayload(), ContentType: info.ContentType}, startAt, release)
}

// run calls the handler, through the interceptors, at startAt (at once when it has passed)
// and queues its result.
func (s *stream) run(ctx context.Context, ex *execution, fn ExecuteFunc, in Payload, startAt time.Time, release func()) {
	defer s.handlers.Done()
	defer s.w.finished()
	var out Payload
	err := waitUntil(ctx, startAt)
	if err == nil {
		out, err = invoke(ctx, fn, in)
	}

	var res *handlerv1.ExecuteResponse
	if err == nil {
		res = outputResult(ex.info.ID, out)
	} else {
		res = errorResult(ctx, ex.info.ID, err)
		var pe *panicError
		if errors.As(err, &pe) {
			s.log.Error("handler panicked", "handler", ex.info.Handler, "execution_id", ex.info.ID,
				"panic", fmt.Sprint(pe.value), "stack", string(pe.stack))
		}
	}
	ex.finished.Store(true)
	release()

	s.mu.Lock()
	delete(s.execs, ex.info.ID)
	s.mu.Unlock()
	s.out.push(res)
}

// waitUntil returns at t, or with the context's cause when ctx ends first (the execution
// was cancelled, or its deadline passed, while it waited for its start time).
func waitUntil(ctx context.Context, t time.Time) error {
	wait := time.Until(t)
	if wait <= 0 {
		return nil
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// invoke calls fn, turning a panic into an error. The handler's own panics are already
// recovered inside the interceptors (see chain); this catches the interceptors' panics.
func invoke(ctx context.Context, fn ExecuteFunc, in Payload) (out Payload, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = Payload{}, &panicError{value: r, stack: debug.Stack()}
		}
	}()
	return fn(ctx, in)
}

// cancelExecution cancels a running execution's context; its handler reports the result.
func (s *stream) cancelExecution(m *handlerv1.Cancel) {
	s.mu.Lock()
	ex, ok := s.execs[m.GetExecutionId()]
	s.mu.Unlock()
	if !ok {
		return // already finished, or never started here
	}
	reason := m.GetReason()
	if reason == "" {
		reason = "cancelled by the agent"
	}
	ex.cancel(errors.New("execution cancelled: " + reason))
}
