package api

import (
	"encoding/json"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tockhq/tock/controlplane/scheduler"
	"github.com/tockhq/tock/controlplane/store"
	agentv1 "github.com/tockhq/tock/proto/tock/agent/v1"
	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

const contentTypeJSON = "application/json"

func jobToProto(j store.Job) *tockv1.Job {
	out := &tockv1.Job{
		Name:       j.Name,
		Handler:    j.Handler,
		Service:    j.Service,
		Selector:   j.Selector,
		Schedule:   scheduleToProto(j.Schedule),
		Payload:    payloadToValue(j.Payload),
		Timeout:    durationpb.New(j.Timeout),
		Priority:   int32(j.Priority),
		Paused:     j.Paused,
		CreateTime: timeToProto(j.CreatedAt),
		UpdateTime: timeToProto(j.UpdatedAt),
		Version:    j.Version,
		RetryPolicy: &tockv1.RetryPolicy{
			MaxAttempts:            int32(j.Retry.MaxAttempts),
			InitialBackoff:         durationpb.New(j.Retry.InitialBackoff),
			BackoffCoefficient:     j.Retry.BackoffCoefficient,
			MaxBackoff:             durationpb.New(j.Retry.MaxBackoff),
			NonRetryableErrorKinds: j.Retry.NonRetryableKinds,
		},
	}
	if !j.Paused {
		out.NextFireTime = timeToProto(nextRun(j))
	}
	setPoliciesProto(out, j)
	out.Routing = routingToProto(j.Routing)
	return out
}

// nextRun is the job's next nominal time that will run: NextFireAt, or, for a job resumed
// since then, its first nominal time after the resume.
func nextRun(j store.Job) time.Time {
	if j.NextFireAt.IsZero() || !j.NextFireAt.Before(j.ResumedAt) {
		return j.NextFireAt
	}
	return scheduler.FirstFire(j.Schedule, j.CreatedAt, j.ResumedAt.Add(-time.Nanosecond))
}

func scheduleToProto(s *store.Schedule) *tockv1.Schedule {
	if s == nil {
		return nil
	}
	out := &tockv1.Schedule{Timezone: s.Timezone}
	switch {
	case s.Cron != "":
		out.Trigger = &tockv1.Schedule_Cron{Cron: s.Cron}
	case s.Interval != 0:
		out.Trigger = &tockv1.Schedule_Interval{Interval: durationpb.New(s.Interval)}
	case !s.At.IsZero():
		out.Trigger = &tockv1.Schedule_At{At: timestamppb.New(s.At)}
	}
	setScheduleRulesProto(out, s)
	return out
}

func executionToProto(e store.Execution) *tockv1.Execution {
	out := &tockv1.Execution{
		Id:          e.ID,
		Job:         e.Job,
		State:       stateToProto(e.State),
		Attempt:     int32(e.Attempt),
		Agent:       e.AgentID,
		NominalTime: timeToProto(e.NominalTime),
		Result:      payloadToValue(e.Result),
		Trigger:     triggerToProto(e.Trigger),
		CreateTime:  timeToProto(e.CreatedAt),
		StartTime:   timeToProto(e.StartedAt),
		FinishTime:  timeToProto(e.FinishedAt),
		LeaseEpoch:  e.LeaseEpoch,
		TraceId:     e.TraceID,
		Handler:     e.Handler,
		RetryOf:     e.RetryOf,
		NotBefore:   timeToProto(e.NotBefore),
		ShardIndex:  int32(e.Route.ShardIndex),
		ShardTotal:  int32(e.Route.ShardTotal),

		UpstreamExecutionIds: e.UpstreamIDs(),
	}
	if e.Error != nil {
		out.Error = &tockv1.ExecutionError{Message: e.Error.Message, Kind: e.Error.Kind, Retryable: e.Error.Retryable}
	}
	out.Progress = progressToProto(e.Progress)
	return out
}

func fireToProto(f store.Fire) *tockv1.Fire {
	return &tockv1.Fire{
		Job:         f.Job,
		NominalTime: timeToProto(f.NominalTime),
		Outcome:     fireOutcomeToProto(f.Outcome),
		ExecutionId: f.ExecutionID,
		FireTime:    timeToProto(f.FiredAt),
	}
}

func agentToProto(a store.Agent, inFlight int) *tockv1.Agent {
	return &tockv1.Agent{
		Id:           a.ID,
		Service:      a.Service,
		Address:      a.Address,
		Labels:       a.Labels,
		Weight:       int32(a.Weight),
		Capacity:     int32(a.Capacity),
		InFlight:     int32(inFlight),
		Handlers:     a.Handlers,
		Connected:    a.Replica != "",
		Replica:      a.Replica,
		LastSeenTime: timeToProto(a.LastSeen),
	}
}

func agentFromRegistration(r *agentv1.RegisterRequest) store.Agent {
	return store.Agent{
		ID:       r.GetAgentId(),
		Service:  r.GetService(),
		Address:  r.GetAddress(),
		Labels:   r.GetLabels(),
		Weight:   int(r.GetWeight()),
		Capacity: int(r.GetCapacity()),
		Handlers: r.GetHandlers(),
	}
}

var states = map[store.ExecState]tockv1.ExecutionState{
	store.ExecPending:   tockv1.ExecutionState_EXECUTION_STATE_PENDING,
	store.ExecAssigned:  tockv1.ExecutionState_EXECUTION_STATE_ASSIGNED,
	store.ExecRunning:   tockv1.ExecutionState_EXECUTION_STATE_RUNNING,
	store.ExecSucceeded: tockv1.ExecutionState_EXECUTION_STATE_SUCCEEDED,
	store.ExecFailed:    tockv1.ExecutionState_EXECUTION_STATE_FAILED,
	store.ExecTimedOut:  tockv1.ExecutionState_EXECUTION_STATE_TIMED_OUT,
	store.ExecCancelled: tockv1.ExecutionState_EXECUTION_STATE_CANCELLED,
	store.ExecLost:      tockv1.ExecutionState_EXECUTION_STATE_LOST,
}

func stateToProto(s store.ExecState) tockv1.ExecutionState { return states[s] }

func stateFromProto(s tockv1.ExecutionState) (store.ExecState, bool) {
	for k, v := range states {
		if v == s {
			return k, true
		}
	}
	return "", false
}

func triggerToProto(t store.TriggerKind) tockv1.TriggerKind {
	switch t {
	case store.TriggerSchedule:
		return tockv1.TriggerKind_TRIGGER_KIND_SCHEDULE
	case store.TriggerManual:
		return tockv1.TriggerKind_TRIGGER_KIND_MANUAL
	case store.TriggerRetry:
		return tockv1.TriggerKind_TRIGGER_KIND_RETRY
	case store.TriggerDependency:
		return tockv1.TriggerKind_TRIGGER_KIND_DEPENDENCY
	case store.TriggerBackfill:
		return tockv1.TriggerKind_TRIGGER_KIND_BACKFILL
	}
	return tockv1.TriggerKind_TRIGGER_KIND_UNSPECIFIED
}

func fireOutcomeToProto(o store.FireOutcome) tockv1.FireOutcome {
	switch o {
	case store.FireDispatched:
		return tockv1.FireOutcome_FIRE_OUTCOME_DISPATCHED
	case store.FireSkippedOverlap:
		return tockv1.FireOutcome_FIRE_OUTCOME_SKIPPED_OVERLAP
	case store.FireMissed:
		return tockv1.FireOutcome_FIRE_OUTCOME_MISSED
	case store.FireSkippedPaused:
		return tockv1.FireOutcome_FIRE_OUTCOME_SKIPPED_PAUSED
	}
	return tockv1.FireOutcome_FIRE_OUTCOME_UNSPECIFIED
}

func timeToProto(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// payloadFromValue encodes a JSON value as payload bytes. A nil value is no payload.
func payloadFromValue(v *structpb.Value) ([]byte, string, error) {
	if v == nil {
		return nil, "", nil
	}
	b, err := protojson.Marshal(v)
	if err != nil {
		return nil, "", err
	}
	return b, contentTypeJSON, nil
}

// payloadToValue shows bytes as JSON: the value itself when they are JSON, otherwise a string
// holding their text (or, for bytes that are not text, nothing).
func payloadToValue(b []byte) *structpb.Value {
	if len(b) == 0 {
		return nil
	}
	if json.Valid(b) {
		v := &structpb.Value{}
		if err := protojson.Unmarshal(b, v); err == nil {
			return v
		}
	}
	if utf8.Valid(b) {
		return structpb.NewStringValue(string(b))
	}
	return nil
}
