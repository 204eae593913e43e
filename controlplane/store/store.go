package store

import (
	"context"
	"time"
)

// Store keeps the control plane's state. Every method is safe for concurrent use, by many
// goroutines and by many replicas sharing one database. Times passed in and returned are
// UTC; "now" inside a method is the database clock, never the caller's.
type Store interface {
	// Now returns the database clock.
	Now(ctx context.Context) (time.Time, error)

	// CreateJob stores a new job with version 1. It fails with ErrAlreadyExists when the
	// name is taken, and with a *DependencyError when DependsOn names a job that does not
	// exist or closes a cycle (UpdateJob too).
	CreateJob(ctx context.Context, job Job) (Job, error)
	// GetJob returns a job by name, or ErrNotFound.
	GetJob(ctx context.Context, name string) (Job, error)
	// ListJobs returns jobs in name order after params.After.
	ListJobs(ctx context.Context, params ListJobsParams) ([]Job, error)
	// UpdateJob reads the job, lets update change it, and writes it back with its version
	// incremented, all in one transaction. Name, CreatedAt and Version are not changeable.
	// An error from update aborts the transaction and is returned as is.
	UpdateJob(ctx context.Context, name string, update func(job *Job) error) (Job, error)
	// DeleteJob deletes a job with its fires and executions, or returns ErrNotFound.
	DeleteJob(ctx context.Context, name string) error

	// FireDueJobs claims up to params.Limit jobs whose NextFireAt is at or before
	// now+params.Horizon (paused jobs: at or before now, never ahead), earliest first, and for
	// each one, in one transaction: calls params.Plan, records the planned fires (unique on job
	// and nominal time; a fire already recorded is left as it was and its execution is not
	// created), creates the executions of the fires that dispatch, and sets the job's
	// NextFireAt to the plan's. NextFireAt moves only in this transaction, together with the
	// fires that account for the times it passes, so a caller that dies mid-way leaves no gap.
	// It returns the fires it recorded. Concurrent callers never claim the same job at once.
	// The plan is told how many of the job's executions are live; a planned fire with Replace
	// set cancels them first.
	FireDueJobs(ctx context.Context, params FireDueParams) ([]Fire, error)
	// Backfill records the fires params.Plan decides for one job, in one transaction, as
	// FireDueJobs does (a nominal time already recorded is left as it was), without moving
	// the job's NextFireAt. It returns the fires it recorded, or ErrNotFound.
	Backfill(ctx context.Context, params BackfillParams) ([]Fire, error)
	// ListFires returns a job's fires, newest nominal time first, before params.Before when
	// it is set.
	ListFires(ctx context.Context, params ListFiresParams) ([]Fire, error)

	// CreateExecution stores a new PENDING execution (a manual trigger); the store generates
	// its ID when empty. It fails with ErrNotFound when the job does not exist and with
	// ErrAlreadyExists when the ID is taken.
	CreateExecution(ctx context.Context, exec Execution) (Execution, error)
	// CreateExecutionOnce is CreateExecution keyed by the caller's requestID, unique per
	// job: the first call with a key creates the execution and returns true; a later call
	// with the same job and key creates nothing and returns the execution the first one
	// created, and false. A key is kept as long as the execution it created.
	CreateExecutionOnce(ctx context.Context, exec Execution, requestID string) (Execution, bool, error)
	// GetExecution returns an execution by id, or ErrNotFound.
	GetExecution(ctx context.Context, id string) (Execution, error)
	// ListExecutions returns executions newest first (by id, which sorts by creation time).
	ListExecutions(ctx context.Context, params ListExecutionsParams) ([]Execution, error)

	// ClaimExecutions assigns pending executions to agents in one transaction. It reads up to
	// params.Limit PENDING executions that are due (NotBefore at or before now) and whose
	// handler is in params.Handlers, highest priority first, then oldest; calls params.Pick
	// with them; and moves each picked execution to ASSIGNED on the picked agent with its
	// lease epoch incremented and its lease deadline at now+params.Lease. It returns the
	// assigned executions, payload included, in the order Pick returned them. Executions
	// another caller assigned first are left out. Before Pick, candidates that stand for a
	// whole fire are fanned out (ClaimParams.FanOut), and candidates whose strategy is
	// RouteShortestExpectedJobFirst get their job's ExpectedDuration.
	ClaimExecutions(ctx context.Context, params ClaimParams) ([]Execution, error)
	// MarkStarted moves ASSIGNED executions to RUNNING when their lease epoch matches, and
	// records their start time. Others are ignored.
	MarkStarted(ctx context.Context, refs []ExecRef, startedAt time.Time) error
	// ExtendLeases moves the lease deadline of the agent's ASSIGNED or RUNNING executions
	// whose epoch matches to now+lease. It returns how many it extended.
	ExtendLeases(ctx context.Context, agentID string, refs []ExecRef, lease time.Duration) (int, error)
	// ReleaseExecutions puts ASSIGNED or RUNNING executions whose epoch matches back to
	// PENDING without counting an attempt. One whose cancellation was requested becomes
	// CANCELLED instead.
	ReleaseExecutions(ctx context.Context, refs []ExecRef) error
	// CompleteExecutions applies results in one transaction. A result is applied only when
	// the execution is ASSIGNED or RUNNING with the same lease epoch; otherwise it is
	// rejected (Applied false, with the reason). For each applied FAILED, TIMED_OUT or LOST
	// result, Retry is called; when it returns ok, a new PENDING execution with the next
	// attempt, TriggerRetry, RetryOf set and NotBefore at the returned time is created. An
	// attempt whose cancellation was requested is never retried.
	//
	// For each applied SUCCEEDED result, every job that depends on the execution's job and
	// whose upstream jobs have now all succeeded for the execution's nominal time is fired for
	// that time, in the same transaction, as PlanDependent decides, with the upstream results
	// copied into its execution; the fire's (job, nominal time) key makes this happen once.
	// A live execution whose schedule-to-close timeout flagged it (ExpireDeadlines) ends
	// TIMED_OUT unless it succeeded (Completion.WithCloseTimeout).
	CompleteExecutions(ctx context.Context, results []Completion, retry RetryPlan) ([]CompletionOutcome, error)
	// ExpireLeases marks up to limit ASSIGNED or RUNNING executions whose lease deadline has
	// passed as LOST, and schedules their retries through retry like CompleteExecutions. It
	// returns the executions it marked LOST.
	ExpireLeases(ctx context.Context, limit int, retry RetryPlan) ([]Execution, error)
	// ExpireDeadlines ends executions whose control-plane timeout passed, up to limit of each
	// kind, and returns them: PENDING ones past their schedule-to-close deadline, or never
	// assigned and past their schedule-to-start deadline, become TIMED_OUT; ASSIGNED or
	// RUNNING ones past their schedule-to-close deadline are flagged for cancellation, with
	// the timeout error preset. None is retried.
	ExpireDeadlines(ctx context.Context, limit int) ([]Execution, error)
	// RequestCancel asks for an execution to be cancelled. A PENDING one becomes CANCELLED at
	// once; an ASSIGNED or RUNNING one is flagged, so that the replica that owns its agent
	// sends the cancellation; a finished one is returned unchanged.
	RequestCancel(ctx context.Context, id string, reason string) (Execution, error)
	// CancelRequested returns the flagged ASSIGNED or RUNNING executions of these agents.
	CancelRequested(ctx context.Context, agentIDs []string) ([]ExecRef, error)
	// InFlight counts ASSIGNED and RUNNING executions per agent.
	InFlight(ctx context.Context) (map[string]int, error)
	// NextNotBefore returns the earliest NotBefore later than now of the PENDING executions
	// of these handlers, or the zero time when there is none. A dispatcher arms its timer on
	// it, so that work another replica created ahead of time starts on time.
	NextNotBefore(ctx context.Context, handlers []string) (time.Time, error)

	// PruneExecutions deletes up to limit executions in a final state that finished more
	// than olderThan before now, oldest first, in one transaction, and returns how many it
	// deleted. An execution is kept while another attempt of the same fire (same job and
	// nominal time) is still PENDING, ASSIGNED or RUNNING. Callers loop until fewer than limit
	// come back.
	PruneExecutions(ctx context.Context, olderThan time.Duration, limit int) (int, error)
	// PruneFires deletes up to limit fires recorded more than olderThan before now, oldest
	// first, in one transaction, and returns how many it deleted. A fire is kept while an
	// execution of it (same job and nominal time) is still PENDING, ASSIGNED or RUNNING.
	PruneFires(ctx context.Context, olderThan time.Duration, limit int) (int, error)
	// PruneRegistrations deletes the replica and agent registrations that expired more than
	// expiredFor before now, and returns how many it deleted.
	PruneRegistrations(ctx context.Context, expiredFor time.Duration) (int, error)

	// RegisterAgent records or refreshes an agent's registration in the built-in registry; it
	// expires ttl after now unless refreshed.
	RegisterAgent(ctx context.Context, agent Agent, ttl time.Duration) error
	// DeregisterAgent removes an agent's registration; removing an unknown agent is not an
	// error.
	DeregisterAgent(ctx context.Context, id string) error
	// ListAgents returns the agents whose registration has not expired, by id.
	ListAgents(ctx context.Context) ([]Agent, error)
	// SetAgentSession records which replica holds a live session with the agent; an empty
	// replica means none. An agent without a registration (one found through Consul) has no
	// record to update, and is not an error.
	SetAgentSession(ctx context.Context, agentID, replica string) error
	// EndAgentSession records that the replica's session with the agent ended: it clears the
	// agent's replica only when it is still this one, so that a replica whose session was
	// replaced does not erase the record of the replica that took the agent over.
	EndAgentSession(ctx context.Context, agentID, replica string) error

	// RegisterReplica records or refreshes a control-plane replica's registration; it expires
	// ttl after now unless refreshed.
	RegisterReplica(ctx context.Context, replica Replica, ttl time.Duration) error
	// DeregisterReplica removes a replica's registration; removing an unknown replica is not
	// an error.
	DeregisterReplica(ctx context.Context, id string) error
	// ListReplicas returns the replicas whose registration has not expired, by id.
	ListReplicas(ctx context.Context) ([]Replica, error)

	// RecordProgress applies progress reports, each only when its lease epoch is the
	// execution's current one (in any state, so that a report that arrives after the result
	// still counts); the last report for an execution wins. The update time is the database
	// clock. It returns how many it applied.
	RecordProgress(ctx context.Context, updates []ProgressUpdate) (int, error)
	// AppendLogs stores log lines in one transaction, each only when its lease epoch is its
	// execution's current one, in any state (lines can arrive right after the result). Lines
	// longer than MaxLogLineBytes are cut; lines beyond MaxLogLinesPerExecution for an
	// execution are dropped. The store generates each line's LineID.
	AppendLogs(ctx context.Context, lines []LogLine) (AppendLogsResult, error)
	// ListLogs returns an execution's log lines in LineID order, after params.After. It
	// returns ErrNotFound when the execution does not exist.
	ListLogs(ctx context.Context, params ListLogsParams) ([]LogLine, error)
	// PendingStats counts the PENDING executions that are due, and finds the oldest.
	PendingStats(ctx context.Context) (PendingStats, error)

	// Close releases the store's connections.
	Close() error
}

// RetryPlan decides whether a failed or lost attempt is retried, and when. It is called
// inside a transaction and must be pure. exec is the attempt as it ends (state, error and
// finish time set).
type RetryPlan func(exec Execution) (notBefore time.Time, ok bool)

// ListJobsParams selects a page of jobs.
type ListJobsParams struct {
	// After is the last name of the previous page; empty for the first page.
	After string
	// Limit is the most jobs returned; 0 means 100.
	Limit int
}

// ListFiresParams selects a page of a job's fires.
type ListFiresParams struct {
	// Job is the job's name.
	Job string
	// Before, when set, returns only fires with an earlier nominal time.
	Before time.Time
	// Limit is the most fires returned; 0 means 100.
	Limit int
}

// ListExecutionsParams selects a page of executions.
type ListExecutionsParams struct {
	// Job, when set, returns only that job's executions.
	Job string
	// State, when set, returns only executions in that state.
	State ExecState
	// BeforeID, when set, returns only executions with a smaller id (older).
	BeforeID string
	// Limit is the most executions returned; 0 means 100.
	Limit int
}

// FireDueParams says which jobs FireDueJobs claims and how it plans their fires.
type FireDueParams struct {
	// Limit is the most jobs claimed; 0 claims none.
	Limit int
	// Horizon claims jobs due up to this far ahead of now, so that a caller can hold their
	// fires on a timer and start them on time.
	Horizon time.Duration
	// Plan decides the fires of one job given what was read about it and the database
	// clock.
	Plan func(due DueJob, now time.Time) FirePlan
}

// FirePlan is what a scheduler decided for one due job.
type FirePlan struct {
	// Fires are the nominal times reached, each with its outcome.
	Fires []PlannedFire
	// NextFireAt is the job's next fire time; zero means the job fires no more.
	NextFireAt time.Time
}

// PlannedFire is one fire a plan records.
type PlannedFire struct {
	// NominalTime is the time the schedule fired for.
	NominalTime time.Time
	// Outcome is what comes of it.
	Outcome FireOutcome
	// Execution is the execution to create when Outcome is FireDispatched; the store
	// links it to the fire. The store generates its ID when empty.
	Execution *Execution
	// Replace asks the store to cancel the job's live executions before creating
	// Execution, as RequestCancel would, when the fire is recorded.
	Replace bool
}

// ClaimParams says which executions ClaimExecutions reads and how they are assigned.
type ClaimParams struct {
	// Handlers limits the claim to executions of these handlers.
	Handlers []string
	// Limit is the most executions read; 0 reads none.
	Limit int
	// Lease is how long an assignment lasts unless the agent heartbeats, from the later of
	// the claim and the execution's not-before time.
	Lease time.Duration
	// Lookahead also claims executions due within this long after now, once the due ones
	// leave room under Limit, earliest first: they are assigned ahead of their not-before
	// time, which travels with the assignment so that the handler starts on time. Zero
	// claims due executions only.
	Lookahead time.Duration
	// Pick chooses an agent for each candidate it wants assigned; candidates it leaves out
	// stay PENDING. An assignment of a candidate pinned to another agent (Route.PinnedAgent)
	// is ignored.
	Pick func(candidates []Execution) []Assignment
	// FanOut makes a candidate that stands for its whole fire (Route.FansOut) into the
	// executions it becomes, before Pick: it returns their routes, the first for the
	// candidate itself, the others for new PENDING copies of it (same job, nominal time,
	// payload, trigger and not-before time, new ids), all in the same transaction; they are
	// offered to Pick with the other candidates. No routes leaves the candidate PENDING as it
	// is and out of Pick. Nil leaves such candidates out of Pick. It must be pure.
	FanOut func(candidate Execution) []Route
}

// LeaseDeadline returns when the lease of an execution claimed at now lapses: lease after the
// later of now and its not-before time, since work claimed ahead runs only from then.
func (p ClaimParams) LeaseDeadline(now time.Time, e Execution) time.Time {
	if e.NotBefore.After(now) {
		now = e.NotBefore
	}
	return now.Add(p.Lease)
}

// Assignment places one execution on one agent.
type Assignment struct {
	// ExecutionID is the execution.
	ExecutionID string
	// AgentID is the agent.
	AgentID string
}

// ExecRef names one assignment of an execution: its id and lease epoch.
type ExecRef struct {
	// ID is the execution's id.
	ID string
	// Epoch is the lease epoch.
	Epoch int64
}

// Completion is one result reported by an agent.
type Completion struct {
	// ID and Epoch name the assignment the result is for.
	ExecRef
	// State is the final state: ExecSucceeded, ExecFailed, ExecTimedOut or ExecCancelled.
	State ExecState
	// Result is the handler's output when it succeeded.
	Result []byte
	// ResultContentType is the media type of Result.
	ResultContentType string
	// Error describes a failure.
	Error *ExecError
	// StartedAt and FinishedAt are the agent's times for the handler.
	StartedAt, FinishedAt time.Time
}

// CompletionOutcome says what happened to one Completion.
type CompletionOutcome struct {
	// ID and Epoch name the assignment.
	ExecRef
	// Applied is true when the result was recorded.
	Applied bool
	// Reason says why a result was rejected.
	Reason string
	// Execution is the execution after the result was applied (when Applied).
	Execution Execution
	// RetryID is the id of the retry created, if any.
	RetryID string
}
