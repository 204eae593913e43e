package pg

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tockhq/tock/controlplane/store"
)

// This file turns records into column values and rows back into records.
//
// Times are TIMESTAMPTZ (microseconds; a zero time is NULL) and come back in UTC. Durations are
// BIGINT microseconds. Maps, lists, schedules, retry policies and errors are JSONB. Empty byte
// strings, maps and lists are NULL and come back nil.

// ts encodes a time; the zero time is NULL.
func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// fromTS decodes ts, in UTC.
func fromTS(v pgtype.Timestamptz) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return v.Time.UTC()
}

// micro truncates a time to the microsecond the database keeps, in UTC.
func micro(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
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

// jsonb encodes v as JSON for a JSONB column.
func jsonb(v any) ([]byte, error) {
	return json.Marshal(v)
}

// jsonMap encodes a map; empty is NULL.
func jsonMap(m map[string]string) (any, error) {
	if len(m) == 0 {
		return nil, nil
	}
	return jsonb(m)
}

// jsonList encodes a list; empty is NULL.
func jsonList(l []string) (any, error) {
	if len(l) == 0 {
		return nil, nil
	}
	return jsonb(l)
}

// jsonPtr encodes a pointer; nil is NULL.
func jsonPtr[T any](p *T) (any, error) {
	if p == nil {
		return nil, nil
	}
	return jsonb(p)
}

// fromJSON decodes a nullable JSONB column into *dst, leaving it zero when NULL.
func fromJSON(v []byte, dst any) error {
	if len(v) == 0 {
		return nil
	}
	return json.Unmarshal(v, dst)
}

// fromJSONMap decodes jsonMap: empty is nil.
func fromJSONMap(v []byte) (map[string]string, error) {
	var m map[string]string
	if err := fromJSON(v, &m); err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
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
	retry, err := jsonb(j.Retry)
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
		j.Timeout.Microseconds(), retry, int64(j.Priority), j.Paused, ts(j.NextFireAt),
		ts(j.CreatedAt), ts(j.UpdatedAt), j.Version, ts(j.ResumedAt),
	}, policy...), nil
}

// scanJob reads a row of jobColumns.
func scanJob(row pgx.Row) (store.Job, error) {
	var (
		j                         store.Job
		selector, schedule, retry []byte
		timeout, priority         int64
		next, created, updated    pgtype.Timestamptz
		resumed                   pgtype.Timestamptz
		policy                    jobPolicyRow
		routing                   []byte
	)
	err := row.Scan(append([]any{&j.Name, &j.Handler, &j.Service, &selector, &schedule, &j.Payload, &j.ContentType,
		&timeout, &retry, &priority, &j.Paused, &next, &created, &updated, &j.Version, &resumed}, append(policy.dests(), &routing)...)...)
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
	if len(schedule) > 0 {
		j.Schedule = new(store.Schedule)
		if err := fromJSON(schedule, j.Schedule); err != nil {
			return store.Job{}, fmt.Errorf("decode job %q schedule: %w", j.Name, err)
		}
	}
	if err := json.Unmarshal(retry, &j.Retry); err != nil {
		return store.Job{}, fmt.Errorf("decode job %q retry policy: %w", j.Name, err)
	}
	j.Payload = fromBlob(j.Payload)
	j.Timeout = time.Duration(timeout) * time.Microsecond
	j.Priority = int(priority)
	j.NextFireAt = fromTS(next)
	j.CreatedAt = fromTS(created)
	j.UpdatedAt = fromTS(updated)
	j.ResumedAt = fromTS(resumed)
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
	retry, err := jsonb(e.Retry)
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
		string(e.Trigger), ts(e.NominalTime), ts(e.NotBefore), int64(e.Priority),
		blob(e.Payload), e.ContentType, e.Timeout.Microseconds(), retry, e.AgentID, e.LeaseEpoch,
		ts(e.LeaseDeadline), e.CancelRequested, blob(e.Result), e.ResultContentType,
		execErr, ts(e.CreatedAt), ts(e.AssignedAt), ts(e.StartedAt),
		ts(e.FinishedAt), e.TraceContext, e.TraceID, e.RetryOf,
		nil, "", nil, // progress: written only by RecordProgress
	}, policy...), nil
}

// scanExecution reads a row of execColumns.
func scanExecution(row pgx.Row) (store.Execution, error) {
	var (
		e                                    store.Execution
		selector, retry, execErr             []byte
		state, trigger                       string
		attempt, priority, timeout           int64
		nominal, notBefore, deadline         pgtype.Timestamptz
		created, assigned, started, finished pgtype.Timestamptz
		progress                             pgtype.Float8
		progressMessage                      string
		progressAt                           pgtype.Timestamptz
		policy                               execPolicyRow
		route                                routeScan
	)
	err := row.Scan(append([]any{&e.ID, &e.Job, &e.Handler, &e.Service, &selector, &attempt, &state, &trigger,
		&nominal, &notBefore, &priority, &e.Payload, &e.ContentType, &timeout, &retry, &e.AgentID,
		&e.LeaseEpoch, &deadline, &e.CancelRequested, &e.Result, &e.ResultContentType, &execErr,
		&created, &assigned, &started, &finished, &e.TraceContext, &e.TraceID, &e.RetryOf,
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
		e.Progress = &store.Progress{Fraction: progress.Float64, Message: progressMessage, UpdatedAt: fromTS(progressAt)}
	}
	if e.Selector, err = fromJSONMap(selector); err != nil {
		return store.Execution{}, fmt.Errorf("decode execution %s selector: %w", e.ID, err)
	}
	if err := json.Unmarshal(retry, &e.Retry); err != nil {
		return store.Execution{}, fmt.Errorf("decode execution %s retry policy: %w", e.ID, err)
	}
	if len(execErr) > 0 {
		e.Error = new(store.ExecError)
		if err := fromJSON(execErr, e.Error); err != nil {
			return store.Execution{}, fmt.Errorf("decode execution %s error: %w", e.ID, err)
		}
	}
	e.Attempt = int(attempt)
	e.State = store.ExecState(state)
	e.Trigger = store.TriggerKind(trigger)
	e.NominalTime = fromTS(nominal)
	e.NotBefore = fromTS(notBefore)
	e.Priority = int(priority)
	e.Payload = fromBlob(e.Payload)
	e.Timeout = time.Duration(timeout) * time.Microsecond
	e.LeaseDeadline = fromTS(deadline)
	e.Result = fromBlob(e.Result)
	e.CreatedAt = fromTS(created)
	e.AssignedAt = fromTS(assigned)
	e.StartedAt = fromTS(started)
	e.FinishedAt = fromTS(finished)
	return e, nil
}

// collectExecutions reads all rows of execColumns and closes rows.
func collectExecutions(rows pgx.Rows, err error) ([]store.Execution, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Execution, error) {
		return scanExecution(row)
	})
}

const fireColumns = `job, nominal_time, outcome, execution_id, fired_at`

// scanFire reads a row of fireColumns.
func scanFire(row pgx.Row) (store.Fire, error) {
	var (
		f              store.Fire
		outcome        string
		nominal, fired pgtype.Timestamptz
	)
	if err := row.Scan(&f.Job, &nominal, &outcome, &f.ExecutionID, &fired); err != nil {
		return store.Fire{}, err
	}
	f.NominalTime = fromTS(nominal)
	f.Outcome = store.FireOutcome(outcome)
	f.FiredAt = fromTS(fired)
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
		a.Replica, ts(a.LastSeen), ts(a.ExpiresAt),
	}, nil
}

// scanAgent reads a row of agentColumns.
func scanAgent(row pgx.Row) (store.Agent, error) {
	var (
		a                   store.Agent
		labels, handlers    []byte
		weight, capacity    int64
		lastSeen, expiresAt pgtype.Timestamptz
	)
	err := row.Scan(&a.ID, &a.Service, &a.Address, &labels, &weight, &capacity, &handlers,
		&a.Replica, &lastSeen, &expiresAt)
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
	a.LastSeen = fromTS(lastSeen)
	a.ExpiresAt = fromTS(expiresAt)
	return a, nil
}
