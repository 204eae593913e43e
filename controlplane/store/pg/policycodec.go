package pg

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tockhq/tock/controlplane/store"
)

// This file encodes the scheduling policies of jobs (misfire, overlap, timeouts,
// dependencies) and what executions carry of them (deadlines, upstream results). Their
// columns follow the others in jobColumns and execColumns.

// jobPolicyColumns are the policy columns of jobs, in jobPolicyArgs order.
const jobPolicyColumns = `misfire, overlap, schedule_to_start_us, schedule_to_close_us, depends_on`

// jobPolicySet assigns the policy columns in an UPDATE from jobPolicyArgs, numbered from
// parameter $from.
func jobPolicySet(from int) string {
	cols := strings.Split(jobPolicyColumns, ", ")
	for i, c := range cols {
		cols[i] = c + " = $" + strconv.Itoa(from+i)
	}
	return strings.Join(cols, ", ")
}

// jobPolicyArgs returns a job's policy values in jobPolicyColumns order. A default policy is
// NULL.
func jobPolicyArgs(j store.Job) ([]any, error) {
	var misfire, overlap any
	var err error
	if j.Misfire != (store.MisfirePolicy{}) {
		if misfire, err = jsonb(j.Misfire); err != nil {
			return nil, fmt.Errorf("encode misfire policy: %w", err)
		}
	}
	if j.Overlap != (store.OverlapPolicy{}) {
		if overlap, err = jsonb(j.Overlap); err != nil {
			return nil, fmt.Errorf("encode overlap policy: %w", err)
		}
	}
	dependsOn, err := jsonList(j.DependsOn)
	if err != nil {
		return nil, fmt.Errorf("encode depends_on: %w", err)
	}
	return []any{misfire, overlap, j.ScheduleToStartTimeout.Microseconds(), j.ScheduleToCloseTimeout.Microseconds(), dependsOn}, nil
}

// jobPolicyRow receives the policy columns of a row.
type jobPolicyRow struct {
	misfire, overlap, dependsOn []byte
	toStart, toClose            int64
}

// dests returns the scan destinations in jobPolicyColumns order.
func (r *jobPolicyRow) dests() []any {
	return []any{&r.misfire, &r.overlap, &r.toStart, &r.toClose, &r.dependsOn}
}

// decode sets the job's policies from the row.
func (r *jobPolicyRow) decode(j *store.Job) error {
	if err := fromJSON(r.misfire, &j.Misfire); err != nil {
		return fmt.Errorf("decode job %q misfire policy: %w", j.Name, err)
	}
	if err := fromJSON(r.overlap, &j.Overlap); err != nil {
		return fmt.Errorf("decode job %q overlap policy: %w", j.Name, err)
	}
	if err := fromJSON(r.dependsOn, &j.DependsOn); err != nil {
		return fmt.Errorf("decode job %q depends_on: %w", j.Name, err)
	}
	if len(j.DependsOn) == 0 {
		j.DependsOn = nil
	}
	j.ScheduleToStartTimeout = time.Duration(r.toStart) * time.Microsecond
	j.ScheduleToCloseTimeout = time.Duration(r.toClose) * time.Microsecond
	return nil
}

// execPolicyColumns are the policy columns of executions, in execPolicyArgs order.
const execPolicyColumns = `schedule_to_start_us, start_deadline, close_deadline, upstream`

// execPolicyArgs returns an execution's policy values in execPolicyColumns order.
func execPolicyArgs(e store.Execution) ([]any, error) {
	var upstream any
	if len(e.Upstream) > 0 {
		var err error
		if upstream, err = jsonb(e.Upstream); err != nil {
			return nil, fmt.Errorf("encode upstream results: %w", err)
		}
	}
	return []any{e.ScheduleToStartTimeout.Microseconds(), ts(e.StartDeadline), ts(e.CloseDeadline), upstream}, nil
}

// execPolicyRow receives the policy columns of a row.
type execPolicyRow struct {
	toStart                int64
	startDeadline, closeBy pgtype.Timestamptz
	upstream               []byte
}

// dests returns the scan destinations in execPolicyColumns order.
func (r *execPolicyRow) dests() []any {
	return []any{&r.toStart, &r.startDeadline, &r.closeBy, &r.upstream}
}

// decode sets the execution's policy fields from the row.
func (r *execPolicyRow) decode(e *store.Execution) error {
	if err := fromJSON(r.upstream, &e.Upstream); err != nil {
		return fmt.Errorf("decode execution %s upstream results: %w", e.ID, err)
	}
	if len(e.Upstream) == 0 {
		e.Upstream = nil
	}
	e.ScheduleToStartTimeout = time.Duration(r.toStart) * time.Microsecond
	e.StartDeadline = fromTS(r.startDeadline)
	e.CloseDeadline = fromTS(r.closeBy)
	return nil
}
