package store

import (
	"time"
)

// Job is a unit of work with a schedule.
type Job struct {
	// Name is the job's identity: a DNS label.
	Name string
	// Handler is the handler the agents' service runs.
	Handler string
	// Service is the agent service that runs the job; empty means any.
	Service string
	// Selector holds labels an agent must carry.
	Selector map[string]string
	// Schedule says when the job fires; nil means only when triggered.
	Schedule *Schedule
	// Payload is the input of each execution.
	Payload []byte
	// ContentType is the media type of Payload.
	ContentType string
	// Timeout bounds one attempt (start to close).
	Timeout time.Duration
	// Retry is how failed attempts are retried.
	Retry RetryPolicy
	// Priority orders executions when agents are saturated; higher first.
	Priority int
	// Paused stops the job from firing: its nominal times are recorded as skipped_paused.
	Paused bool
	// ResumedAt is when the job was last resumed (database clock); zero when never. Nominal
	// times before it that were not recorded yet are recorded as skipped_paused, so that
	// resuming continues from the first nominal time after it and no time is lost.
	ResumedAt time.Time
	// NextFireAt is when the job fires next; zero when it does not.
	NextFireAt time.Time
	// CreatedAt and UpdatedAt are set by the store.
	CreatedAt, UpdatedAt time.Time
	// Version grows by one on every UpdateJob; set by the store. FireDueJobs moving
	// NextFireAt is bookkeeping and does not count.
	Version int64
	// Misfire says what happens to nominal times the scheduler reaches late.
	Misfire MisfirePolicy
	// Overlap says what happens to a fire while earlier executions of the job are live.
	Overlap OverlapPolicy
	// ScheduleToStartTimeout bounds how long an execution may wait for an agent once it is
	// due; zero means no limit.
	ScheduleToStartTimeout time.Duration
	// ScheduleToCloseTimeout bounds a fire from its nominal time through every retry; zero
	// means no limit.
	ScheduleToCloseTimeout time.Duration
	// DependsOn names the jobs that must succeed for a nominal time before this job runs for
	// it. The store rejects names of jobs that do not exist and cycles (DependencyError).
	DependsOn []string
	// Routing says how agents are chosen for the job's executions (routing.go).
	Routing Routing
}

// Schedule says when a job fires. Exactly one of Cron, Interval and At is set.
type Schedule struct {
	// Cron is a robfig/cron expression.
	Cron string `json:"cron,omitempty"`
	// Interval fires at a fixed period from the job's creation.
	Interval time.Duration `json:"interval,omitempty"`
	// At fires once.
	At time.Time `json:"at,omitzero"`
	// Timezone is the IANA zone Cron is read in; empty means UTC.
	Timezone string `json:"timezone,omitempty"`
	// Jitter delays each fire's execution by a deterministic amount in [0, Jitter).
	Jitter time.Duration `json:"jitter,omitempty"`
	// SpringForward is what a cron schedule does with a skipped local time; empty means
	// SpringForwardFirstValid.
	SpringForward SpringForward `json:"spring_forward,omitempty"`
	// FallBack is what a cron schedule does with a repeated local time; empty means
	// FallBackOnce.
	FallBack FallBack `json:"fall_back,omitempty"`
}

// RetryPolicy says how failed attempts are retried.
type RetryPolicy struct {
	// MaxAttempts is the most attempts in all, the first included.
	MaxAttempts int `json:"max_attempts"`
	// InitialBackoff is the delay before the first retry.
	InitialBackoff time.Duration `json:"initial_backoff"`
	// BackoffCoefficient multiplies the delay per retry.
	BackoffCoefficient float64 `json:"backoff_coefficient"`
	// MaxBackoff caps the delay.
	MaxBackoff time.Duration `json:"max_backoff"`
	// NonRetryableKinds are error kinds that end the chain.
	NonRetryableKinds []string `json:"non_retryable_kinds,omitempty"`
	// Jitter, from 0 to 1, is the largest fraction by which a delay may be shortened.
	Jitter float64 `json:"jitter,omitempty"`
}

// FireOutcome is what came of a fire.
type FireOutcome string

// The fire outcomes.
const (
	FireDispatched     FireOutcome = "dispatched"
	FireSkippedOverlap FireOutcome = "skipped_overlap"
	FireMissed         FireOutcome = "missed"
	FireSkippedPaused  FireOutcome = "skipped_paused"
)

// Fire is one nominal time a job's schedule reached.
type Fire struct {
	// Job is the job's name.
	Job string
	// NominalTime is the time the schedule fired for.
	NominalTime time.Time
	// Outcome is what came of it.
	Outcome FireOutcome
	// ExecutionID is the execution it created, if any.
	ExecutionID string
	// FiredAt is when it was recorded (database clock).
	FiredAt time.Time
	// Execution is the execution it created, when returned by FireDueJobs.
	Execution *Execution
}

// ExecState is where an execution is in its life.
type ExecState string

// The execution states.
const (
	ExecPending   ExecState = "pending"
	ExecAssigned  ExecState = "assigned"
	ExecRunning   ExecState = "running"
	ExecSucceeded ExecState = "succeeded"
	ExecFailed    ExecState = "failed"
	ExecTimedOut  ExecState = "timed_out"
	ExecCancelled ExecState = "cancelled"
	ExecLost      ExecState = "lost"
)

// Final reports whether the state is an end state.
func (s ExecState) Final() bool {
	switch s {
	case ExecSucceeded, ExecFailed, ExecTimedOut, ExecCancelled, ExecLost:
		return true
	}
	return false
}

// TriggerKind is what created an execution.
type TriggerKind string

// The trigger kinds.
const (
	TriggerSchedule TriggerKind = "schedule"
	TriggerManual   TriggerKind = "manual"
	TriggerRetry    TriggerKind = "retry"
	// TriggerDependency: the jobs it depends on succeeded for its nominal time.
	TriggerDependency TriggerKind = "dependency"
	// TriggerBackfill: a backfill of a past range.
	TriggerBackfill TriggerKind = "backfill"
)

// Execution is one attempt to run a job. It carries a copy of what it needs from the job at
// the time it was created, so that changing the job does not change executions in flight.
type Execution struct {
	// ID is a UUIDv7; the store generates it when empty.
	ID string
	// Job is the job's name.
	Job string
	// Handler, Service and Selector say what runs it and where.
	Handler  string
	Service  string
	Selector map[string]string
	// Attempt counts from 1.
	Attempt int
	// State is where it is.
	State ExecState
	// Trigger is what created it.
	Trigger TriggerKind
	// NominalTime is the time it was meant to run.
	NominalTime time.Time
	// NotBefore is the earliest time it may be assigned.
	NotBefore time.Time
	// Priority orders pending executions; higher first.
	Priority int
	// Payload is the input, ContentType its media type.
	Payload     []byte
	ContentType string
	// Timeout bounds the attempt; the handler's deadline is the assignment time plus Timeout.
	Timeout time.Duration
	// Retry is the job's retry policy at creation.
	Retry RetryPolicy
	// AgentID is the agent it is or was assigned to.
	AgentID string
	// LeaseEpoch grows with each assignment.
	LeaseEpoch int64
	// LeaseDeadline is when the assignment lapses without a heartbeat.
	LeaseDeadline time.Time
	// CancelRequested is set when a cancellation was asked for while it ran.
	CancelRequested bool
	// Result and ResultContentType hold the handler's output.
	Result            []byte
	ResultContentType string
	// Error describes a failure.
	Error *ExecError
	// CreatedAt, AssignedAt, StartedAt and FinishedAt trace its life.
	CreatedAt, AssignedAt, StartedAt, FinishedAt time.Time
	// TraceContext is the W3C traceparent of its trace, TraceID the trace's id.
	TraceContext string
	TraceID      string
	// Progress is what its handler last reported through RecordProgress; nil when nothing.
	// CreateExecution ignores it.
	Progress *Progress
	// RetryOf is the id of the attempt this one retries.
	RetryOf string
	// ScheduleToStartTimeout is the job's at creation; the store sets StartDeadline from it.
	ScheduleToStartTimeout time.Duration
	// StartDeadline is when a PENDING execution times out without an agent: NotBefore plus
	// ScheduleToStartTimeout, set by the store; zero means never.
	StartDeadline time.Time
	// CloseDeadline is when the fire times out, whatever attempt runs: the nominal time plus
	// the job's schedule-to-close timeout; retries keep it. Zero means never.
	CloseDeadline time.Time
	// Upstream holds the results of the upstream executions that started it (TriggerDependency),
	// copied when it was created; retries keep them.
	Upstream []UpstreamResult
	// Route is the job's routing at creation and the execution's place in its fire's
	// fan-out (shard, pinned agent); retries keep it.
	Route Route
	// ExpectedDuration is how long the job's runs took lately (ExpectedDuration of its
	// latest succeeded executions); ClaimExecutions sets it on candidates whose strategy is
	// RouteShortestExpectedJobFirst, and it is zero elsewhere and when nothing is known.
	ExpectedDuration time.Duration
}

// ExecError describes why an execution did not succeed.
type ExecError struct {
	// Message is for a person.
	Message string `json:"message"`
	// Kind is a short machine-readable kind.
	Kind string `json:"kind,omitempty"`
	// Retryable says whether the handler allowed a retry.
	Retryable bool `json:"retryable"`
	// RetryAfter, when set, is the least delay before a retry.
	RetryAfter time.Duration `json:"retry_after,omitempty"`
}

// Agent is a registered sidecar.
type Agent struct {
	// ID is its stable id.
	ID string
	// Service is the service it sits next to.
	Service string
	// Address is where a replica dials it.
	Address string
	// Labels, Weight, Capacity and Handlers are what it advertises.
	Labels   map[string]string
	Weight   int
	Capacity int
	Handlers []string
	// Replica is the replica holding a session with it; empty when none.
	Replica string
	// LastSeen is when it last registered.
	LastSeen time.Time
	// ExpiresAt is when its registration lapses.
	ExpiresAt time.Time
}

// Replica is a registered control-plane replica (tockd).
type Replica struct {
	// ID is its stable id, unique among the replicas sharing a database.
	ID string
	// Address is where its gRPC API answers.
	Address string
	// LastSeen is when it last registered (database clock).
	LastSeen time.Time
	// ExpiresAt is when its registration lapses unless refreshed (database clock).
	ExpiresAt time.Time
}
