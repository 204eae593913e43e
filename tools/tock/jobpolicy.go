package main

import (
	"strings"
	"time"

	"github.com/spf13/pflag"
	"google.golang.org/protobuf/types/known/durationpb"

	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

// policyFlags are the flags of "job create" that set a job's scheduling policies.
type policyFlags struct {
	misfire         string
	maxCatchUp      int32
	misfireGrace    time.Duration
	catchUpWindow   time.Duration
	overlap         string
	maxConcurrent   int32
	scheduleToStart time.Duration
	scheduleToClose time.Duration
	dependsOn       []string
	jitter          time.Duration
	springForward   string
	fallBack        string
}

// policyFlagNames are the names of the policy flags, which -f cannot go with.
var policyFlagNames = []string{
	"misfire", "max-catch-up", "misfire-grace", "catch-up-window", "overlap", "max-concurrent",
	"schedule-to-start-timeout", "schedule-to-close-timeout", "depends-on", "jitter",
	"spring-forward", "fall-back",
}

func (f *policyFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.misfire, "misfire", "", "what to do with fires missed while the control plane was down or behind: `skip`, run-once or catch-up (default run-once)")
	fl.Int32Var(&f.maxCatchUp, "max-catch-up", 0, "with --misfire catch-up, run at most `N` missed fires, newest first (default 10)")
	fl.DurationVar(&f.misfireGrace, "misfire-grace", 0, "a fire reached at most this late still runs as usual (default 5s)")
	fl.DurationVar(&f.catchUpWindow, "catch-up-window", 0, "with --misfire catch-up, run only missed fires this recent (default 1h)")
	fl.StringVar(&f.overlap, "overlap", "", "what to do with a fire while earlier executions run: `allow`, forbid, replace or allow-n (default allow)")
	fl.Int32Var(&f.maxConcurrent, "max-concurrent", 0, "with --overlap allow-n, at most `N` executions at once")
	fl.DurationVar(&f.scheduleToStart, "schedule-to-start-timeout", 0, "time out an execution that no agent takes within this long after it is due")
	fl.DurationVar(&f.scheduleToClose, "schedule-to-close-timeout", 0, "time out a fire not done within this long after its nominal time, retries included")
	fl.StringArrayVar(&f.dependsOn, "depends-on", nil, "run after these `JOBS` (comma-separated, repeatable) succeed, for their nominal time; no schedule then")
	fl.DurationVar(&f.jitter, "jitter", 0, "start each fire up to this much after its nominal time, spreading jobs on one schedule")
	fl.StringVar(&f.springForward, "spring-forward", "", "a cron time skipped by daylight saving: `first-valid` (run when the clocks jump) or skip")
	fl.StringVar(&f.fallBack, "fall-back", "", "a cron time repeated by daylight saving: `once` (the first) or both")
}

// apply sets the policies the flags give on job. changed says whether a flag was given.
func (f *policyFlags) apply(job *tockv1.Job, changed func(string) bool) error {
	if err := f.applyMisfire(job, changed); err != nil {
		return err
	}
	if err := f.applyOverlap(job, changed); err != nil {
		return err
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
		set  func(*durationpb.Duration)
	}{
		{"schedule-to-start-timeout", f.scheduleToStart, func(d *durationpb.Duration) { job.ScheduleToStartTimeout = d }},
		{"schedule-to-close-timeout", f.scheduleToClose, func(d *durationpb.Duration) { job.ScheduleToCloseTimeout = d }},
	} {
		if !changed(d.flag) {
			continue
		}
		if d.v <= 0 {
			return usageErrorf("invalid --%s %s: must be positive", d.flag, d.v)
		}
		d.set(durationpb.New(d.v))
	}
	for _, v := range f.dependsOn {
		for name := range strings.SplitSeq(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				job.DependsOn = append(job.DependsOn, name)
			}
		}
	}
	return f.applySchedule(job, changed)
}

func (f *policyFlags) applyMisfire(job *tockv1.Job, changed func(string) bool) error {
	if !changed("misfire") && !changed("max-catch-up") && !changed("misfire-grace") && !changed("catch-up-window") {
		return nil
	}
	p := &tockv1.MisfirePolicy{}
	switch normalize(f.misfire) {
	case "":
	case "skip":
		p.Action = tockv1.MisfireAction_MISFIRE_ACTION_SKIP
	case "run-once":
		p.Action = tockv1.MisfireAction_MISFIRE_ACTION_RUN_ONCE
	case "catch-up":
		p.Action = tockv1.MisfireAction_MISFIRE_ACTION_CATCH_UP
	default:
		return usageErrorf("invalid --misfire %q: want skip, run-once or catch-up", f.misfire)
	}
	if changed("max-catch-up") || changed("catch-up-window") {
		if p.Action != tockv1.MisfireAction_MISFIRE_ACTION_CATCH_UP {
			return usageErrorf("--max-catch-up and --catch-up-window go with --misfire catch-up")
		}
		p.MaxCatchUp = f.maxCatchUp
		if changed("catch-up-window") {
			p.Window = durationpb.New(f.catchUpWindow)
		}
	}
	if changed("misfire-grace") {
		p.Grace = durationpb.New(f.misfireGrace)
	}
	job.MisfirePolicy = p
	return nil
}

func (f *policyFlags) applyOverlap(job *tockv1.Job, changed func(string) bool) error {
	if !changed("overlap") && !changed("max-concurrent") {
		return nil
	}
	p := &tockv1.OverlapPolicy{}
	switch normalize(f.overlap) {
	case "", "allow":
		p.Action = tockv1.OverlapAction_OVERLAP_ACTION_ALLOW
	case "forbid":
		p.Action = tockv1.OverlapAction_OVERLAP_ACTION_FORBID
	case "replace":
		p.Action = tockv1.OverlapAction_OVERLAP_ACTION_REPLACE
	case "allow-n":
		p.Action = tockv1.OverlapAction_OVERLAP_ACTION_ALLOW_N
	default:
		return usageErrorf("invalid --overlap %q: want allow, forbid, replace or allow-n", f.overlap)
	}
	if p.Action == tockv1.OverlapAction_OVERLAP_ACTION_ALLOW_N {
		if f.maxConcurrent < 1 {
			return usageErrorf("--overlap allow-n needs --max-concurrent N (1 or more)")
		}
		p.MaxConcurrent = f.maxConcurrent
	} else if changed("max-concurrent") {
		return usageErrorf("--max-concurrent goes with --overlap allow-n")
	}
	job.OverlapPolicy = p
	return nil
}

func (f *policyFlags) applySchedule(job *tockv1.Job, changed func(string) bool) error {
	given := changed("jitter") || changed("spring-forward") || changed("fall-back")
	if !given {
		return nil
	}
	if job.Schedule == nil {
		return usageErrorf("--jitter, --spring-forward and --fall-back apply to a schedule; give --cron, --every or --at")
	}
	if changed("jitter") {
		if f.jitter < 0 {
			return usageErrorf("invalid --jitter %s: must not be negative", f.jitter)
		}
		job.Schedule.Jitter = durationpb.New(f.jitter)
	}
	switch normalize(f.springForward) {
	case "":
	case "first-valid":
		job.Schedule.SpringForward = tockv1.SpringForward_SPRING_FORWARD_RUN_AT_FIRST_VALID
	case "skip":
		job.Schedule.SpringForward = tockv1.SpringForward_SPRING_FORWARD_SKIP
	default:
		return usageErrorf("invalid --spring-forward %q: want first-valid or skip", f.springForward)
	}
	switch normalize(f.fallBack) {
	case "":
	case "once":
		job.Schedule.FallBack = tockv1.FallBack_FALL_BACK_RUN_ONCE
	case "both":
		job.Schedule.FallBack = tockv1.FallBack_FALL_BACK_RUN_BOTH
	default:
		return usageErrorf("invalid --fall-back %q: want once or both", f.fallBack)
	}
	return nil
}

// normalize reads an option as a person types it: "Catch_Up" is "catch-up".
func normalize(s string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), "_", "-"))
}
