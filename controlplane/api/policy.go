package api

import (
	"math"
	"slices"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tockhq/tock/controlplane/scheduler"
	"github.com/tockhq/tock/controlplane/store"
	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

// This file validates and converts the scheduling policies of a job: misfire, overlap,
// the schedule-to-start and schedule-to-close timeouts, dependencies, jitter and the
// daylight saving rules.

// Limits on the scheduling policies.
const (
	DefaultMisfireGrace = 5 * time.Second
	MinMisfireGrace     = time.Second
	MaxMisfireGrace     = 24 * time.Hour
	MaxCatchUp          = 1000
	MaxCatchUpWindow    = 7 * 24 * time.Hour
	MaxConcurrent       = 1000
	MinControlTimeout   = time.Second
	MaxScheduleToStart  = 24 * time.Hour
	MaxScheduleToClose  = 7 * 24 * time.Hour
	MaxDependsOn        = 32
	MaxScheduleJitter   = time.Hour
)

var misfireActions = map[tockv1.MisfireAction]store.MisfireAction{
	tockv1.MisfireAction_MISFIRE_ACTION_UNSPECIFIED: store.MisfireRunOnce,
	tockv1.MisfireAction_MISFIRE_ACTION_SKIP:        store.MisfireSkip,
	tockv1.MisfireAction_MISFIRE_ACTION_RUN_ONCE:    store.MisfireRunOnce,
	tockv1.MisfireAction_MISFIRE_ACTION_CATCH_UP:    store.MisfireCatchUp,
}

var overlapActions = map[tockv1.OverlapAction]store.OverlapAction{
	tockv1.OverlapAction_OVERLAP_ACTION_UNSPECIFIED: store.OverlapAllow,
	tockv1.OverlapAction_OVERLAP_ACTION_ALLOW:       store.OverlapAllow,
	tockv1.OverlapAction_OVERLAP_ACTION_FORBID:      store.OverlapForbid,
	tockv1.OverlapAction_OVERLAP_ACTION_REPLACE:     store.OverlapReplace,
	tockv1.OverlapAction_OVERLAP_ACTION_ALLOW_N:     store.OverlapAllowN,
}

// policiesFromProto validates the job's scheduling policies and sets them on job, whose
// schedule is already converted.
func policiesFromProto(p *tockv1.Job, job *store.Job) error {
	var err error
	if job.Misfire, err = misfireFromProto(p.GetMisfirePolicy()); err != nil {
		return err
	}
	if job.Overlap, err = overlapFromProto(p.GetOverlapPolicy()); err != nil {
		return err
	}
	if job.ScheduleToStartTimeout, err = controlTimeout("job.schedule_to_start_timeout", p.GetScheduleToStartTimeout(), MaxScheduleToStart); err != nil {
		return err
	}
	if job.ScheduleToCloseTimeout, err = controlTimeout("job.schedule_to_close_timeout", p.GetScheduleToCloseTimeout(), MaxScheduleToClose); err != nil {
		return err
	}
	job.DependsOn, err = dependsOnFromProto(job.Name, p.GetDependsOn(), job.Schedule != nil)
	return err
}

// misfireFromProto validates a misfire policy and fills in its defaults.
func misfireFromProto(p *tockv1.MisfirePolicy) (store.MisfirePolicy, error) {
	action, ok := misfireActions[p.GetAction()]
	if !ok {
		return store.MisfirePolicy{}, invalid("job.misfire_policy.action", "unknown action %d; use SKIP, RUN_ONCE or CATCH_UP", p.GetAction())
	}
	m := store.MisfirePolicy{Action: action, Grace: DefaultMisfireGrace}
	if g := p.GetGrace(); g != nil {
		d, err := boundedDuration("job.misfire_policy.grace", g, MinMisfireGrace, MaxMisfireGrace)
		if err != nil {
			return m, err
		}
		m.Grace = d
	}
	if action != store.MisfireCatchUp {
		if p.GetMaxCatchUp() != 0 || p.GetWindow() != nil {
			return m, invalid("job.misfire_policy", "max_catch_up and window apply to the CATCH_UP action only")
		}
		return m, nil
	}
	m.MaxCatchUp, m.Window = scheduler.DefaultMaxCatchUp, scheduler.DefaultCatchUpWindow
	if n := p.GetMaxCatchUp(); n != 0 {
		if n < 1 || n > MaxCatchUp {
			return m, invalid("job.misfire_policy.max_catch_up", "must be between 1 and %d, got %d", MaxCatchUp, n)
		}
		m.MaxCatchUp = int(n)
	}
	if w := p.GetWindow(); w != nil {
		d, err := boundedDuration("job.misfire_policy.window", w, time.Second, MaxCatchUpWindow)
		if err != nil {
			return m, err
		}
		m.Window = d
	}
	return m, nil
}

// overlapFromProto validates an overlap policy.
func overlapFromProto(p *tockv1.OverlapPolicy) (store.OverlapPolicy, error) {
	action, ok := overlapActions[p.GetAction()]
	if !ok {
		return store.OverlapPolicy{}, invalid("job.overlap_policy.action", "unknown action %d; use ALLOW, FORBID, REPLACE or ALLOW_N", p.GetAction())
	}
	o := store.OverlapPolicy{Action: action}
	n := p.GetMaxConcurrent()
	switch {
	case action == store.OverlapAllowN && (n < 1 || n > MaxConcurrent):
		return o, invalid("job.overlap_policy.max_concurrent", "must be between 1 and %d for ALLOW_N, got %d", MaxConcurrent, n)
	case action != store.OverlapAllowN && n != 0:
		return o, invalid("job.overlap_policy.max_concurrent", "applies to the ALLOW_N action only")
	}
	o.MaxConcurrent = int(n)
	return o, nil
}

// controlTimeout validates an optional timeout the control plane enforces.
func controlTimeout(field string, d *durationpb.Duration, limit time.Duration) (time.Duration, error) {
	if d == nil {
		return 0, nil
	}
	return boundedDuration(field, d, MinControlTimeout, limit)
}

// boundedDuration validates a duration that is set.
func boundedDuration(field string, d *durationpb.Duration, lo, hi time.Duration) (time.Duration, error) {
	if err := d.CheckValid(); err != nil {
		return 0, invalid(field, "is not a valid duration: %v", err)
	}
	v := d.AsDuration()
	if v < lo || v > hi {
		return 0, invalid(field, "must be between %s and %s, got %s", lo, hi, v)
	}
	return v, nil
}

// dependsOnFromProto validates the names of the jobs a job depends on. Whether they exist,
// and whether they close a cycle, the store checks as it writes the job.
func dependsOnFromProto(name string, deps []string, scheduled bool) ([]string, error) {
	if len(deps) == 0 {
		return nil, nil
	}
	if scheduled {
		return nil, invalid("job.depends_on", "a job that depends on others runs when they succeed, for their nominal time; remove its schedule")
	}
	if len(deps) > MaxDependsOn {
		return nil, invalid("job.depends_on", "names %d jobs; the limit is %d", len(deps), MaxDependsOn)
	}
	out := make([]string, 0, len(deps))
	for i, d := range deps {
		field := "job.depends_on[" + strconv.Itoa(i) + "]"
		if err := validateName(field, d); err != nil {
			return nil, err
		}
		if d == name {
			return nil, invalid(field, "a job cannot depend on itself")
		}
		if slices.Contains(out, d) {
			return nil, invalid(field, "%q is named twice", d)
		}
		out = append(out, d)
	}
	return out, nil
}

// scheduleRulesFromProto validates a schedule's jitter and daylight saving rules and sets
// them on s. field names the schedule.
func scheduleRulesFromProto(field string, p *tockv1.Schedule, s *store.Schedule) error {
	if j := p.GetJitter(); j != nil {
		d, err := boundedDuration(field+".jitter", j, 0, MaxScheduleJitter)
		if err != nil {
			return err
		}
		s.Jitter = d
	}
	switch p.GetSpringForward() {
	case tockv1.SpringForward_SPRING_FORWARD_UNSPECIFIED:
	case tockv1.SpringForward_SPRING_FORWARD_RUN_AT_FIRST_VALID:
		s.SpringForward = store.SpringForwardFirstValid
	case tockv1.SpringForward_SPRING_FORWARD_SKIP:
		s.SpringForward = store.SpringForwardSkip
	default:
		return invalid(field+".spring_forward", "unknown rule %d; use RUN_AT_FIRST_VALID or SKIP", p.GetSpringForward())
	}
	switch p.GetFallBack() {
	case tockv1.FallBack_FALL_BACK_UNSPECIFIED:
	case tockv1.FallBack_FALL_BACK_RUN_ONCE:
		s.FallBack = store.FallBackOnce
	case tockv1.FallBack_FALL_BACK_RUN_BOTH:
		s.FallBack = store.FallBackBoth
	default:
		return invalid(field+".fall_back", "unknown rule %d; use RUN_ONCE or RUN_BOTH", p.GetFallBack())
	}
	return nil
}

// retryJitterFromProto validates a retry policy's jitter.
func retryJitterFromProto(j float64) (float64, error) {
	if math.IsNaN(j) || j < 0 || j > 1 {
		return 0, invalid("job.retry_policy.jitter", "must be between 0 and 1, got %v", j)
	}
	return j, nil
}

func misfireToProto(m store.MisfirePolicy) *tockv1.MisfirePolicy {
	out := &tockv1.MisfirePolicy{Action: tockv1.MisfireAction_MISFIRE_ACTION_RUN_ONCE, Grace: durationpb.New(DefaultMisfireGrace)}
	for k, v := range misfireActions {
		if v == m.Action && k != tockv1.MisfireAction_MISFIRE_ACTION_UNSPECIFIED {
			out.Action = k
		}
	}
	if m.Grace > 0 {
		out.Grace = durationpb.New(m.Grace)
	}
	if m.Action == store.MisfireCatchUp {
		out.MaxCatchUp, out.Window = scheduler.DefaultMaxCatchUp, durationpb.New(scheduler.DefaultCatchUpWindow)
		if m.MaxCatchUp > 0 {
			out.MaxCatchUp = int32(m.MaxCatchUp)
		}
		if m.Window > 0 {
			out.Window = durationpb.New(m.Window)
		}
	}
	return out
}

func overlapToProto(o store.OverlapPolicy) *tockv1.OverlapPolicy {
	out := &tockv1.OverlapPolicy{Action: tockv1.OverlapAction_OVERLAP_ACTION_ALLOW, MaxConcurrent: int32(o.MaxConcurrent)}
	for k, v := range overlapActions {
		if v == o.Action && k != tockv1.OverlapAction_OVERLAP_ACTION_UNSPECIFIED {
			out.Action = k
		}
	}
	return out
}

// durationOrNil is a duration field that is absent when zero.
func durationOrNil(d time.Duration) *durationpb.Duration {
	if d == 0 {
		return nil
	}
	return durationpb.New(d)
}

// setPoliciesProto sets the scheduling policies of a job on its proto.
func setPoliciesProto(out *tockv1.Job, j store.Job) {
	out.MisfirePolicy = misfireToProto(j.Misfire)
	out.OverlapPolicy = overlapToProto(j.Overlap)
	out.ScheduleToStartTimeout = durationOrNil(j.ScheduleToStartTimeout)
	out.ScheduleToCloseTimeout = durationOrNil(j.ScheduleToCloseTimeout)
	out.DependsOn = j.DependsOn
	out.RetryPolicy.Jitter = j.Retry.Jitter
}

// setScheduleRulesProto sets a schedule's jitter and daylight saving rules on its proto.
func setScheduleRulesProto(out *tockv1.Schedule, s *store.Schedule) {
	out.Jitter = durationOrNil(s.Jitter)
	out.SpringForward = tockv1.SpringForward_SPRING_FORWARD_RUN_AT_FIRST_VALID
	if s.SpringForward == store.SpringForwardSkip {
		out.SpringForward = tockv1.SpringForward_SPRING_FORWARD_SKIP
	}
	out.FallBack = tockv1.FallBack_FALL_BACK_RUN_ONCE
	if s.FallBack == store.FallBackBoth {
		out.FallBack = tockv1.FallBack_FALL_BACK_RUN_BOTH
	}
}
