package main

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

// resultWidth is the most characters of an execution's result shown in a table.
const resultWidth = 40

// none stands for an absent value in tables and blocks.
const none = "-"

var (
	jobHeader       = []string{"NAME", "HANDLER", "SCHEDULE", "NEXT FIRE", "PAUSED"}
	executionHeader = []string{"ID", "JOB", "STATE", "ATTEMPT", "AGENT", "NOMINAL TIME", "DURATION", "RESULT"}
	agentHeader     = []string{"ID", "SERVICE", "ADDRESS", "WEIGHT", "CAPACITY", "IN-FLIGHT", "CONNECTED"}
	fireHeader      = []string{"NOMINAL TIME", "OUTCOME", "EXECUTION", "LATENESS"}
)

// jobs writes a table of jobs.
func (p *printer) jobs(jobs []*tockv1.Job) error {
	rows := make([][]string, 0, len(jobs))
	for _, j := range jobs {
		rows = append(rows, []string{
			orNone(j.GetName()),
			orNone(j.GetHandler()),
			formatSchedule(j.GetSchedule()),
			formatTime(j.GetNextFireTime()),
			yesNo(j.GetPaused()),
		})
	}
	return p.table(jobHeader, rows)
}

// job writes one job as a block of fields.
func (p *printer) job(j *tockv1.Job) error {
	fs := []field{
		{"Name", orNone(j.GetName())},
		{"Handler", orNone(j.GetHandler())},
		{"Service", orNone(j.GetService())},
		{"Selector", formatSelector(j.GetSelector())},
		{"Schedule", formatSchedule(j.GetSchedule())},
		{"Next fire", formatTime(j.GetNextFireTime())},
		{"Paused", yesNo(j.GetPaused())},
		{"Payload", formatValue(j.GetPayload())},
		{"Timeout", formatDuration(j.GetTimeout())},
		{"Max attempts", formatMaxAttempts(j.GetRetryPolicy())},
		{"Backoff", formatBackoff(j.GetRetryPolicy())},
	}
	if kinds := j.GetRetryPolicy().GetNonRetryableErrorKinds(); len(kinds) > 0 {
		fs = append(fs, field{"Non-retryable", strings.Join(kinds, ", ")})
	}
	fs = append(fs, policyFields(j)...)
	fs = append(fs,
		field{"Priority", strconv.Itoa(int(j.GetPriority()))},
		field{"Created", formatTime(j.GetCreateTime())},
		field{"Updated", formatTime(j.GetUpdateTime())},
		field{"Version", strconv.FormatInt(j.GetVersion(), 10)},
	)
	return p.fields(fs)
}

// executions writes a table of executions.
func (p *printer) executions(es []*tockv1.Execution) error {
	rows := make([][]string, 0, len(es))
	for _, e := range es {
		rows = append(rows, []string{
			orNone(e.GetId()),
			orNone(e.GetJob()),
			stateName(e.GetState()),
			strconv.Itoa(int(e.GetAttempt())),
			orNone(e.GetAgent()),
			formatTime(e.GetNominalTime()),
			executionDuration(e, p.now),
			truncate(clean(resultSummary(e)), resultWidth),
		})
	}
	return p.table(executionHeader, rows)
}

// execution writes one execution as a block of fields.
func (p *printer) execution(e *tockv1.Execution) error {
	fs := []field{
		{"ID", orNone(e.GetId())},
		{"Job", orNone(e.GetJob())},
		{"Handler", orNone(e.GetHandler())},
		{"State", stateName(e.GetState())},
		{"Attempt", strconv.Itoa(int(e.GetAttempt()))},
		{"Trigger", triggerName(e.GetTrigger())},
	}
	if e.GetRetryOf() != "" {
		fs = append(fs, field{"Retry of", e.GetRetryOf()})
	}
	if up := e.GetUpstreamExecutionIds(); len(up) > 0 {
		fs = append(fs, field{"Upstream", strings.Join(up, ", ")})
	}
	fs = append(fs,
		field{"Agent", orNone(e.GetAgent())},
		field{"Nominal time", formatTime(e.GetNominalTime())},
		field{"Created", formatTime(e.GetCreateTime())},
	)
	if e.GetNotBefore() != nil {
		fs = append(fs, field{"Not before", formatTime(e.GetNotBefore())})
	}
	fs = append(fs,
		field{"Started", formatTime(e.GetStartTime())},
		field{"Finished", formatTime(e.GetFinishTime())},
		field{"Duration", executionDuration(e, p.now)},
		field{"Lease epoch", strconv.FormatInt(e.GetLeaseEpoch(), 10)},
		field{"Trace ID", orNone(e.GetTraceId())},
	)
	if e.GetProgress() != nil {
		fs = append(fs, field{"Progress", formatProgress(e.GetProgress())})
	}
	if e.GetResult() != nil {
		fs = append(fs, field{"Result", formatValueIndented(e.GetResult())})
	}
	if e.GetError() != nil {
		fs = append(fs, field{"Error", formatExecutionError(e.GetError())})
	}
	return p.fields(fs)
}

// agents writes a table of agents.
func (p *printer) agents(as []*tockv1.Agent) error {
	rows := make([][]string, 0, len(as))
	for _, a := range as {
		connected := yesNo(a.GetConnected())
		if a.GetDraining() {
			connected += " (draining)"
		}
		rows = append(rows, []string{
			orNone(a.GetId()),
			orNone(a.GetService()),
			orNone(a.GetAddress()),
			strconv.Itoa(int(a.GetWeight())),
			strconv.Itoa(int(a.GetCapacity())),
			strconv.Itoa(int(a.GetInFlight())),
			connected,
		})
	}
	return p.table(agentHeader, rows)
}

// fires writes a table of fires.
func (p *printer) fires(fs []*tockv1.Fire) error {
	rows := make([][]string, 0, len(fs))
	for _, f := range fs {
		rows = append(rows, []string{
			formatTime(f.GetNominalTime()),
			outcomeName(f.GetOutcome()),
			orNone(f.GetExecutionId()),
			lateness(f),
		})
	}
	return p.table(fireHeader, rows)
}

// enumName shortens a protobuf enum value name by its type prefix: EXECUTION_STATE_SUCCEEDED
// becomes SUCCEEDED. The unspecified value is shown as absent.
func enumName(name, prefix string) string {
	short := strings.TrimPrefix(name, prefix)
	if short == "UNSPECIFIED" {
		return none
	}
	return short
}

func stateName(s tockv1.ExecutionState) string {
	return enumName(s.String(), "EXECUTION_STATE_")
}

func outcomeName(o tockv1.FireOutcome) string {
	return enumName(o.String(), "FIRE_OUTCOME_")
}

func triggerName(t tockv1.TriggerKind) string {
	return enumName(t.String(), "TRIGGER_KIND_")
}

// formatSchedule describes when a job fires: "cron 0 3 * * * (Europe/London)",
// "every 1m30s", "at 2026-01-02T03:04:05Z", or "manual" for a job without a schedule.
func formatSchedule(s *tockv1.Schedule) string {
	var out string
	switch t := s.GetTrigger().(type) {
	case *tockv1.Schedule_Cron:
		out = "cron " + t.Cron
	case *tockv1.Schedule_Interval:
		out = "every " + formatDuration(t.Interval)
	case *tockv1.Schedule_At:
		out = "at " + formatTime(t.At)
	default:
		return "manual"
	}
	if tz := s.GetTimezone(); tz != "" {
		out += " (" + tz + ")"
	}
	return out
}

// formatSelector renders labels as "k=v,k=v" in key order.
func formatSelector(sel map[string]string) string {
	if len(sel) == 0 {
		return none
	}
	keys := make([]string, 0, len(sel))
	for k := range sel {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+sel[k])
	}
	return strings.Join(parts, ",")
}

// formatTime renders a timestamp in UTC as RFC 3339.
func formatTime(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return none
	}
	if !ts.IsValid() {
		return "invalid time"
	}
	return ts.AsTime().UTC().Format(time.RFC3339)
}

func formatDuration(d *durationpb.Duration) string {
	if d == nil {
		return none
	}
	return d.AsDuration().String()
}

// humanDuration rounds d to a precision a person reads at a glance: milliseconds under a
// second, hundredths of a second under a minute, seconds above.
func humanDuration(d time.Duration) string {
	switch {
	case d == math.MinInt64:
		return d.String()
	case d < 0:
		return "-" + humanDuration(-d)
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(10 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}

// executionDuration is how long the handler ran, or has been running so far.
func executionDuration(e *tockv1.Execution, now func() time.Time) string {
	start := e.GetStartTime()
	if start == nil || !start.IsValid() {
		return none
	}
	if finish := e.GetFinishTime(); finish != nil && finish.IsValid() {
		return humanDuration(finish.AsTime().Sub(start.AsTime()))
	}
	switch e.GetState() {
	case tockv1.ExecutionState_EXECUTION_STATE_ASSIGNED, tockv1.ExecutionState_EXECUTION_STATE_RUNNING:
		if now != nil {
			return humanDuration(now().Sub(start.AsTime()))
		}
	}
	return none
}

// lateness is how long after its nominal time a fire was recorded.
func lateness(f *tockv1.Fire) string {
	nominal, fired := f.GetNominalTime(), f.GetFireTime()
	if nominal == nil || fired == nil || !nominal.IsValid() || !fired.IsValid() {
		return none
	}
	return humanDuration(fired.AsTime().Sub(nominal.AsTime()))
}

// resultSummary is what an execution came to, on one line: its error when it has one,
// otherwise its result.
func resultSummary(e *tockv1.Execution) string {
	if e.GetError() != nil {
		return formatExecutionError(e.GetError())
	}
	return formatValue(e.GetResult())
}

// formatExecutionError renders an execution's error as "Kind: message".
func formatExecutionError(err *tockv1.ExecutionError) string {
	msg := err.GetMessage()
	if kind := err.GetKind(); kind != "" {
		if msg == "" {
			return kind
		}
		msg = kind + ": " + msg
	}
	if msg == "" {
		msg = "error"
	}
	if err.GetRetryable() {
		msg += " (retryable)"
	}
	return msg
}

// formatValue renders a JSON value on one line; a string is shown as its text.
func formatValue(v *structpb.Value) string {
	if v == nil {
		return none
	}
	if s, ok := v.GetKind().(*structpb.Value_StringValue); ok {
		return s.StringValue
	}
	return compactJSON(v)
}

// formatValueIndented renders a JSON value over several lines; a string is shown as its
// text.
func formatValueIndented(v *structpb.Value) string {
	if s, ok := v.GetKind().(*structpb.Value_StringValue); ok {
		return s.StringValue
	}
	b, err := marshalJSON(v)
	if err != nil {
		return formatValue(v)
	}
	return string(b)
}

func formatMaxAttempts(rp *tockv1.RetryPolicy) string {
	if rp.GetMaxAttempts() == 0 {
		return "default"
	}
	return strconv.Itoa(int(rp.GetMaxAttempts()))
}

// formatBackoff renders the retry delays, such as "initial 1s, factor 2, max 1m"; parts the
// policy leaves unset take the server's defaults and are not shown.
func formatBackoff(rp *tockv1.RetryPolicy) string {
	var parts []string
	if rp.GetInitialBackoff() != nil {
		parts = append(parts, "initial "+formatDuration(rp.GetInitialBackoff()))
	}
	if c := rp.GetBackoffCoefficient(); c != 0 {
		parts = append(parts, "factor "+strconv.FormatFloat(c, 'g', -1, 64))
	}
	if rp.GetMaxBackoff() != nil {
		parts = append(parts, "max "+formatDuration(rp.GetMaxBackoff()))
	}
	if len(parts) == 0 {
		return "default"
	}
	return strings.Join(parts, ", ")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orNone(s string) string {
	if s == "" {
		return none
	}
	return s
}
