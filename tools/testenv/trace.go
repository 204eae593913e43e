package testenv

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Trace is a trace as Jaeger's query API returns it (its JSON model): the spans Jaeger has of
// one trace id, and the processes (services) that sent them. Ids are lowercase hex: 32 digits
// for a trace, 16 for a span, except that Jaeger writes a trace id whose first 16 digits are
// zero with its last 16 only (random ids almost never are).
type Trace struct {
	TraceID   string             `json:"traceID"`
	Spans     []Span             `json:"spans"`
	Processes map[string]Process `json:"processes"`
	Warnings  []string           `json:"warnings"`
}

// Span is one span of a Trace. An OTLP span's attributes are its Tags; its kind is the tag
// span.kind (client, server, producer, consumer, internal); an error status is the tags
// otel.status_code=ERROR and error=true; its events are its Logs, each with an "event" field
// naming it; its resource's attributes are its process's tags.
type Span struct {
	TraceID       string      `json:"traceID"`
	SpanID        string      `json:"spanID"`
	OperationName string      `json:"operationName"`
	References    []Reference `json:"references"`
	// StartMicros is the start in microseconds since the Unix epoch; see Start.
	StartMicros int64 `json:"startTime"`
	// DurationMicros is the length in microseconds; see Duration.
	DurationMicros int64      `json:"duration"`
	Tags           []KeyValue `json:"tags"`
	Logs           []Log      `json:"logs"`
	ProcessID      string     `json:"processID"`
	Warnings       []string   `json:"warnings"`
}

// Reference links a span to another: RefType is CHILD_OF (the parent) or FOLLOWS_FROM (an
// OTLP link).
type Reference struct {
	RefType string `json:"refType"`
	TraceID string `json:"traceID"`
	SpanID  string `json:"spanID"`
}

// KeyValue is a tag or a log field. Type is string, bool, int64, float64 or binary; numbers
// are json.Number values, so that int64s keep every digit.
type KeyValue struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value any    `json:"value"`
}

// Log is a span event: its time in microseconds since the Unix epoch, and its fields.
type Log struct {
	TimestampMicros int64      `json:"timestamp"`
	Fields          []KeyValue `json:"fields"`
}

// Process is the service that sent spans: its service.name and its other resource attributes.
type Process struct {
	ServiceName string     `json:"serviceName"`
	Tags        []KeyValue `json:"tags"`
}

// Start returns when the span started.
func (s Span) Start() time.Time { return time.UnixMicro(s.StartMicros) }

// Duration returns how long the span lasted.
func (s Span) Duration() time.Duration { return time.Duration(s.DurationMicros) * time.Microsecond }

// ParentSpanID returns the id of the span's parent, "" for a root span.
func (s Span) ParentSpanID() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" && r.TraceID == s.TraceID {
			return r.SpanID
		}
	}
	return ""
}

// Tag returns the value of the span's tag key, and whether it has one.
func (s Span) Tag(key string) (any, bool) {
	return lookup(s.Tags, key)
}

// TagString returns the value of the span's tag key as text ("" when it has none): strings as
// they are, numbers and booleans as JSON writes them.
func (s Span) TagString(key string) string {
	v, ok := s.Tag(key)
	if !ok {
		return ""
	}
	return fmt.Sprint(v)
}

// Events returns the names of the span's events, in order.
func (s Span) Events() []string {
	var names []string
	for _, l := range s.Logs {
		if v, ok := lookup(l.Fields, "event"); ok {
			names = append(names, fmt.Sprint(v))
		}
	}
	return names
}

// Service returns the service.name of the process that sent span s.
func (t Trace) Service(s Span) string {
	return t.Processes[s.ProcessID].ServiceName
}

// SpansNamed returns the trace's spans whose operation name is name, in start order.
func (t Trace) SpansNamed(name string) []Span {
	var spans []Span
	for _, s := range t.sorted() {
		if s.OperationName == name {
			spans = append(spans, s)
		}
	}
	return spans
}

// SpanByID returns the span with the given id, and whether the trace has it.
func (t Trace) SpanByID(spanID string) (Span, bool) {
	for _, s := range t.Spans {
		if s.SpanID == spanID {
			return s, true
		}
	}
	return Span{}, false
}

// Roots returns the spans without a parent in the trace, in start order: one for a complete
// trace; more, or none, while spans are missing.
func (t Trace) Roots() []Span {
	var roots []Span
	for _, s := range t.sorted() {
		if p := s.ParentSpanID(); p == "" {
			roots = append(roots, s)
		} else if _, ok := t.SpanByID(p); !ok {
			roots = append(roots, s)
		}
	}
	return roots
}

// Children returns the spans whose parent is span spanID, in start order.
func (t Trace) Children(spanID string) []Span {
	var children []Span
	for _, s := range t.sorted() {
		if s.ParentSpanID() == spanID {
			children = append(children, s)
		}
	}
	return children
}

// String draws the trace as a tree, one span a line: service, operation, span id, duration.
func (t Trace) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "trace %s (%d spans)\n", t.TraceID, len(t.Spans))
	var draw func(s Span, depth int)
	draw = func(s Span, depth int) {
		fmt.Fprintf(&b, "%s%s %s [%s] %s\n", strings.Repeat("  ", depth+1), t.Service(s), s.OperationName, s.SpanID, s.Duration())
		for _, c := range t.Children(s.SpanID) {
			draw(c, depth+1)
		}
	}
	for _, r := range t.Roots() {
		draw(r, 0)
	}
	return b.String()
}

// sorted returns the spans in start order.
func (t Trace) sorted() []Span {
	spans := append([]Span(nil), t.Spans...)
	sort.SliceStable(spans, func(i, k int) bool { return spans[i].StartMicros < spans[k].StartMicros })
	return spans
}

// Traces is a list of traces; its String draws each.
type Traces []Trace

// String draws every trace.
func (ts Traces) String() string {
	var b strings.Builder
	for _, t := range ts {
		b.WriteString(t.String())
	}
	return b.String()
}

// lookup returns the value of key in kvs.
func lookup(kvs []KeyValue, key string) (any, bool) {
	for _, kv := range kvs {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return nil, false
}
