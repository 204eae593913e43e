package sqlite

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/tockhq/tock/controlplane/store"
)

// This file turns records into column values and rows back into records.

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// micros encodes a time as microseconds since the epoch; the zero time is NULL.
func micros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// fromMicros decodes micros.
func fromMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64).UTC()
}

// blob encodes bytes; empty is NULL.
func blob(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// fromBlob decodes blob: empty is nil.
func fromBlob(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// jsonText encodes v as JSON text.
func jsonText(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// jsonMap encodes a map; empty is NULL.
func jsonMap(m map[string]string) (any, error) {
	if len(m) == 0 {
		return nil, nil
	}
	return jsonText(m)
}

// jsonList encodes a list; empty is NULL.
func jsonList(l []string) (any, error) {
	if len(l) == 0 {
		return nil, nil
	}
	return jsonText(l)
}

// jsonPtr encodes a pointer; nil is NULL.
func jsonPtr[T any](p *T) (any, error) {
	if p == nil {
		return nil, nil
	}
	return jsonText(p)
}

// fromJSON decodes a nullable JSON column into *dst, leaving it zero when NULL.
func fromJSON(v sql.NullString, dst any) error {
	if !v.Valid || v.String == "" {
		return nil
	}
	return json.Unmarshal([]byte(v.String), dst)
}

// fromJSONMap decodes jsonMap: empty is nil.
func fromJSONMap(v sql.NullString) (map[string]string, error) {
	var m map[string]string
	if err := fromJSON(v, &m); err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

// boolInt encodes a bool as 0 or 1.
func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

const jobColumns = `name, handler, service, selector, schedule, payload, content_type, timeout_us,
	retry, priority, paused, next_fire_at, created_at, updated_at, version, resumed_at, ` + jobPolicyColumns + `,
	routing`

// jobArgs returns a job's values in jobColumns order.
func jobArgs(j store.Job) ([]any, error) {
	selector, err := jsonMap(j.Selector)
	if err != nil {
		return nil, fmt.Errorf("encode selector: %w", err)
	}
	schedule, err := jsonPtr(j.Schedule)
	if err != nil {
		return nil, fmt.Errorf("encode schedule: %w", err)
	}
	retry, err := jsonText(j.Retry)
	if err != nil {
		return nil, fmt.Errorf("encode retry policy: %w", err)
	}
	policy, err := jobPolicyArgs(j)
	if err != nil {
		return nil, err
	}
	routing, err := routingArg(j.Routing)
	if err != nil {
		return nil, fmt.Errorf("encode routing: %w", err)
	}
	policy = append(policy, routing)
	return append([]any{
		j.Name, j.Handler, j.Service, selector, schedule, blob(j.Payload), j.ContentType,
		j.Timeout.Microseconds(), retry, int64(j.Priority), boolInt(j.Paused), micros(j.NextFireAt),
		micros(j.CreatedAt), micros(j.UpdatedAt), j.Version, micros(j.ResumedAt),
	}, policy...), nil
}

// scanJob reads a row of jobColumns.
func scanJob(row scanner) (store.Job, error) {
	var (
		j                     store.Job
		selector, schedule    sql.NullString
		retry                 string
		payload               []byte
		timeout, priority     int64
		paused                int64
		next, created, update sql.NullInt64
		resumed               sql.NullInt64
		policy                jobPolicyRow
		routing               sql.NullString
	)
	err := row.Scan(append([]any{&j.Name, &j.Handler, &j.Service, &selector, &schedule, &payload, &j.ContentType,
		&timeout, &retry, &priority, &paused, &next, &created, &update, &j.Version, &resumed}, append(policy.dests(), &routing)...)...)
	if err != nil {
		return store.Job{}, err
	}
	if j.Routing, err = fromRouting(routing); err != nil {
		return store.Job{}, fmt.Errorf("decode job %q routing: %w", j.Name, err)
	}
	if err := policy.decode(&j); err != nil {
		return store.Job{}, err
	}
	if j.Selector, err = fromJSONMap(selector); err != nil {
		return store.Job{}, fmt.Errorf("decode job %q selector: %w", j.Name, err)
	}
	if schedule.Valid {
		j.Schedule = new(store.Schedule)
		if err := fromJSON(schedule, j.Schedule); err != nil {
			return store.Job{}, fmt.Errorf("decode job %q schedule: %w", j.Name, err)
		}
	}
	if err := json.Unmarshal([]byte(retry), &j.Retry); err != nil {
		return store.Job{}, fmt.Errorf("decode job %q retry policy: %w", j.Name, err)
	}
	j.Payload = fromBlob(payload)
	j.Timeout = time.Duration(timeout) * time.Microsecond
	j.Priority = int(priority)
	j.Paused = paused != 0
	j.NextFireAt = fromMicros(next)
	j.CreatedAt = fromMicros(created)
	j.UpdatedAt = fromMicros(update)
	j.ResumedAt = fromMicros(resumed)
	return j, nil
}

const execColumns = `id, job, handler, service, selector, attempt, state, trigger_kind, nominal_time,
	not_before, priority, payload, content_type, timeout_us, retry, agent_id, lease_epoch,
	lease_deadline, cancel_requested, result, result_content_type, error, created_at, assigned_at,
	started_at, finished_at, trace_context, trace_id, retry_of, progress_fraction, progress_message,
	progress_at, ` + execPolicyColumns + `, ` + routeColumns

// execArgs returns an execution's values in execColumns order.
func execArgs(e store.Execution) ([]any, error) {
	selector, err := jsonMap(e.Selector)
	if err != nil {
		return nil, fmt.Errorf("encode selector: %w", err)
	}
	retry, err := jsonText(e.Retry)
	if err != nil {
		return nil, fmt.Errorf("encode retry policy: %w", err)
	}
	execErr, err := jsonPtr(e.Error)
	if err != nil {
		return nil, fmt.Errorf("encode error: %w", err)
	}
	policy, err := execPolicyArgs(e)
	if err != nil {
		return nil, err
	}
	route, err := routeArgs(e.Route)
	if err != nil {
		return nil, err
	}
	policy = append(policy, route...)
	return append([]any{
		e.ID, e.Job, e.Handler, e.Service, selector, int64(e.Attempt), string(e.State),
		string(e.Trigger), micros(e.NominalTime), micros(e.NotBefore), int64(e.Priority),
		blob(e.Payload), e.ContentType, e.Timeout.Microseconds(), retry, e.AgentID, e.LeaseEpoch,
		micros(e.LeaseDeadline), boolInt(e.CancelRequested), blob(e.Result), e.ResultContentType,
		execErr, micros(e.CreatedAt), micros(e.AssignedAt), micros(e.StartedAt),
		micros(e.FinishedAt), e.TraceContext, e.TraceID, e.RetryOf,
		nil, "", nil, // progress: written only by RecordProgress
	}, policy...), nil
}

// scanExecution reads a row of execColumns.
func scanExecution(row scanner) (store.Execution, error) {
	var (
		e                                      store.Execution
		selector, execErr                      sql.NullString
		retry, state, trigger                  string
		attempt, priority, timeout, cancel     int64
		payload, result                        []byte
		nominal, notBefore, deadline           sql.NullInt64
		created, assigned, started, finishedAt sql.NullInt64
		progress                               sql.NullFloat64
		progressMessage                        string
		progressAt                             sql.NullInt64
		policy                                 execPolicyRow
		route                                  routeScan
	)
	err := row.Scan(append([]any{&e.ID, &e.Job, &e.Handler, &e.Service, &selector, &attempt, &state, &trigger,
		&nominal, &notBefore, &priority, &payload, &e.ContentType, &timeout, &retry, &e.AgentID,
		&e.LeaseEpoch, &deadline, &cancel, &result, &e.ResultContentType, &execErr, &created,
		&assigned, &started, &finishedAt, &e.TraceContext, &e.TraceID, &e.RetryOf,
		&progress, &progressMessage, &progressAt}, append(policy.dests(), route.dest()...)...)...)
	if err != nil {
		return store.Execution{}, err
	}
	if e.Route, err = route.route(); err != nil {
		return store.Execution{}, fmt.Errorf("decode execution %s: %w", e.ID, err)
	}
	if err := policy.decode(&e); err != nil {
		return store.Execution{}, err
	}
	if progress.Valid {
		e.Progress = &store.Progress{Fraction: progress.Float64, Message: progressMessage, UpdatedAt: fromMicros(progressAt)}
	}
	if e.Selector, err = fromJSONMap(selector); err != nil {
		return store.Execution{}, fmt.Errorf("decode execution %s selector: %w", e.ID, err)
	}
	if err := json.Unmarshal([]byte(retry), &e.Retry); err != nil {
		return store.Execution{}, fmt.Errorf("decode execution %s retry policy: %w", e.ID, err)
	}
	if execErr.Valid {
		e.Error = new(store.ExecError)
		if err := fromJSON(execErr, e.Error); err != nil {
			return store.Execution{}, fmt.Errorf("decode execution %s error: %w", e.ID, err)
		}
	}
	e.Attempt = int(attempt)
	e.State = store.ExecState(state)
	e.Trigger = store.TriggerKind(trigger)
	e.NominalTime = fromMicros(nominal)
	e.NotBefore = fromMicros(notBefore)
	e.Priority = int(priority)
	e.Payload = fromBlob(payload)
	e.Timeout = time.Duration(timeout) * time.Microsecond
	e.LeaseDeadline = fromMicros(deadline)
	e.CancelRequested = cancel != 0
	e.Result = fromBlob(result)
	e.CreatedAt = fromMicros(created)
	e.AssignedAt = fromMicros(assigned)
	e.StartedAt = fromMicros(started)
	e.FinishedAt = fromMicros(finishedAt)
	return e, nil
}

// scanExecutions reads all rows of execColumns and closes rows.
func scanExecutions(rows *sql.Rows) ([]store.Execution, error) {
	defer rows.Close()
	var out []store.Execution
	for rows.Next() {
		e, err := scanExecution(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

const fireColumns = `job, nominal_time, outcome, execution_id, fired_at`

// scanFire reads a row of fireColumns.
func scanFire(row scanner) (store.Fire, error) {
	var (
		f              store.Fire
		outcome        string
		nominal, fired sql.NullInt64
	)
	if err := row.Scan(&f.Job, &nominal, &outcome, &f.ExecutionID, &fired); err != nil {
		return store.Fire{}, err
	}
	f.NominalTime = fromMicros(nominal)
	f.Outcome = store.FireOutcome(outcome)
	f.FiredAt = fromMicros(fired)
	return f, nil
}

const agentColumns = `id, service, address, labels, weight, capacity, handlers, replica, last_seen,
	expires_at`

// agentArgs returns an agent's values in agentColumns order.
func agentArgs(a store.Agent) ([]any, error) {
	labels, err := jsonMap(a.Labels)
	if err != nil {
		return nil, fmt.Errorf("encode labels: %w", err)
	}
	handlers, err := jsonList(a.Handlers)
	if err != nil {
		return nil, fmt.Errorf("encode handlers: %w", err)
	}
	return []any{
		a.ID, a.Service, a.Address, labels, int64(a.Weight), int64(a.Capacity), handlers,
		a.Replica, micros(a.LastSeen), micros(a.ExpiresAt),
	}, nil
}

// scanAgent reads a row of agentColumns.
func scanAgent(row scanner) (store.Agent, error) {
	var (
		a                  store.Agent
		labels, handlers   sql.NullString
		weight, capacity   int64
		lastSeen, expireAt sql.NullInt64
	)
	err := row.Scan(&a.ID, &a.Service, &a.Address, &labels, &weight, &capacity, &handlers,
		&a.Replica, &lastSeen, &expireAt)
	if err != nil {
		return store.Agent{}, err
	}
	if a.Labels, err = fromJSONMap(labels); err != nil {
		return store.Agent{}, fmt.Errorf("decode agent %s labels: %w", a.ID, err)
	}
	if err := fromJSON(handlers, &a.Handlers); err != nil {
		return store.Agent{}, fmt.Errorf("decode agent %s handlers: %w", a.ID, err)
	}
	if len(a.Handlers) == 0 {
		a.Handlers = nil
	}
	a.Weight = int(weight)
	a.Capacity = int(capacity)
	a.LastSeen = fromMicros(lastSeen)
	a.ExpiresAt = fromMicros(expireAt)
	return a, nil
}
