package worker

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode"

	handlerv1 "github.com/tockhq/tock/proto/tock/handler/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Logf sends a log line for the current execution to the agent, which forwards it to the
// control plane. It never blocks; outside a handler, or after the handler returned, it does
// nothing. Log lines may be dropped when the agent cannot keep up.
func Logf(ctx context.Context, level slog.Level, format string, args ...any) {
	ex := executionOf(ctx)
	if ex == nil {
		return
	}
	ex.sendLog(time.Now(), level, fmt.Sprintf(format, args...))
}

// Logger returns a structured logger for the current execution. Every record is sent to the
// agent as a log line of the execution, like Logf, with its attributes appended to the message
// as key=value pairs; it is also written to Options.Logger (when that logger's level allows),
// with the execution's id, job, handler and attempt as attributes. Records logged after the
// handler returned reach only Options.Logger.
//
// Outside a handler, Logger returns slog.Default(), so that code shared with other callers
// can log through it.
func Logger(ctx context.Context) *slog.Logger {
	ex, ok := ctx.Value(execKey{}).(*execution)
	if !ok {
		return slog.Default()
	}
	ex.loggerOnce.Do(func() {
		local := ex.log.With(
			"execution_id", ex.info.ID,
			"job", ex.info.Job,
			"handler", ex.info.Handler,
			"attempt", ex.info.Attempt,
		).Handler()
		ex.logger = slog.New(&execHandler{ex: ex, local: local})
	})
	return ex.logger
}

// sendLog queues a log line unless the handler has returned.
func (ex *execution) sendLog(t time.Time, level slog.Level, msg string) {
	if ex.finished.Load() {
		return
	}
	ex.out.pushDroppable(&handlerv1.ExecuteResponse{Kind: &handlerv1.ExecuteResponse_Log{
		Log: &handlerv1.Log{
			ExecutionId: ex.info.ID,
			Time:        timestamppb.New(t),
			Level:       level.String(),
			Message:     msg,
		},
	}})
}

// execHandler is the slog.Handler of Logger: it sends each record to the agent and hands it
// to the local handler.
type execHandler struct {
	ex     *execution
	local  slog.Handler
	attrs  string // attributes added by WithAttrs, formatted for the agent
	prefix string // the groups opened by WithGroup, each followed by a dot
}

// Enabled reports true: every record goes to the agent, whatever the local level.
func (h *execHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *execHandler) Handle(ctx context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	b.WriteString(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		appendAttr(&b, h.prefix, a)
		return true
	})
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	h.ex.sendLog(t, r.Level, b.String())
	if !h.local.Enabled(ctx, r.Level) {
		return nil
	}
	if err := h.local.Handle(ctx, r); err != nil {
		return fmt.Errorf("write handler log line: %w", err)
	}
	return nil
}

func (h *execHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.attrs)
	for _, a := range attrs {
		appendAttr(&b, h.prefix, a)
	}
	return &execHandler{ex: h.ex, local: h.local.WithAttrs(attrs), attrs: b.String(), prefix: h.prefix}
}

func (h *execHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &execHandler{ex: h.ex, local: h.local.WithGroup(name), attrs: h.attrs, prefix: h.prefix + name + "."}
}

// appendAttr writes " key=value" for a, with groups flattened into dotted keys.
func appendAttr(b *strings.Builder, prefix string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		if a.Key != "" {
			prefix += a.Key + "."
		}
		for _, ga := range a.Value.Group() {
			appendAttr(b, prefix, ga)
		}
		return
	}
	b.WriteByte(' ')
	b.WriteString(prefix)
	b.WriteString(a.Key)
	b.WriteByte('=')
	b.WriteString(quoteIfNeeded(a.Value.String()))
}

// quoteIfNeeded quotes s when it would not read back as one value.
func quoteIfNeeded(s string) string {
	if s == "" {
		return `""`
	}
	for _, r := range s {
		if r == '=' || r == '"' || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}
