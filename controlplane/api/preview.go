package api

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tockhq/tock/controlplane/schedule"
	"github.com/tockhq/tock/controlplane/scheduler"
	"github.com/tockhq/tock/controlplane/store"
	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

// Preview limits.
const (
	defaultPreviewCount = 10
	maxPreviewCount     = 1000
	// maxPreviewSkip bounds the nominal times a job's preview walks past to reach the
	// present (a job behind its schedule).
	maxPreviewSkip = 1_000_000
)

// scheduleService implements tock.v1.ScheduleService.
type scheduleService struct {
	tockv1.UnimplementedScheduleServiceServer
	s *Server
}

func previewCount(n int32) (int, error) {
	switch {
	case n < 0 || n > maxPreviewCount:
		return 0, invalid("count", "must be between 1 and %d, got %d", maxPreviewCount, n)
	case n == 0:
		return defaultPreviewCount, nil
	}
	return int(n), nil
}

// PreviewSchedule validates a schedule and returns its next nominal fire times after a given
// time (default now), read in its zone under its daylight saving rules.
func (x *scheduleService) PreviewSchedule(ctx context.Context, req *tockv1.PreviewScheduleRequest) (*tockv1.PreviewScheduleResponse, error) {
	count, err := previewCount(req.GetCount())
	if err != nil {
		return nil, x.s.status("preview schedule", err, "")
	}
	after := req.GetAfter().AsTime()
	if req.GetAfter() == nil {
		if after, err = x.s.now(ctx); err != nil {
			return nil, x.s.status("preview schedule", err, "")
		}
	} else if err := req.GetAfter().CheckValid(); err != nil {
		return nil, x.s.status("preview schedule", invalid("after", "is not a valid time: %v", err), "")
	}
	if req.GetSchedule() == nil {
		return nil, x.s.status("preview schedule", invalid("schedule", "is required"), "")
	}
	s, err := scheduleFromProto("schedule", req.GetSchedule(), after)
	if err != nil {
		return nil, x.s.status("preview schedule", err, "")
	}
	if s == nil {
		return nil, x.s.status("preview schedule", invalid("schedule", "has no trigger: set cron, interval or at"), "")
	}
	sched, err := schedule.Parse(scheduler.SpecOf(*s), after)
	if err != nil {
		return nil, x.s.status("preview schedule", err, "")
	}
	times, err := fireTimes(s, schedule.Preview(sched, after, count))
	if err != nil {
		return nil, x.s.status("preview schedule", err, "")
	}
	return &tockv1.PreviewScheduleResponse{FireTimes: times}, nil
}

// PreviewJob returns the next nominal fire times of a job after now: those of its schedule
// from its next fire time on, as the scheduler will reach them.
func (j *jobService) PreviewJob(ctx context.Context, req *tockv1.PreviewJobRequest) (*tockv1.PreviewJobResponse, error) {
	if err := validateName("name", req.GetName()); err != nil {
		return nil, j.s.status("preview job", err, "")
	}
	count, err := previewCount(req.GetCount())
	if err != nil {
		return nil, j.s.status("preview job", err, "")
	}
	job, err := j.s.store.GetJob(ctx, req.GetName())
	if err != nil {
		return nil, j.s.status("preview job", err, "job "+quote(req.GetName()))
	}
	if job.Schedule == nil {
		msg := "job %q has no schedule: it runs only when triggered"
		if len(job.DependsOn) > 0 {
			msg = "job %q has no schedule: it runs when the jobs it depends on succeed"
		}
		return nil, status.Errorf(codes.FailedPrecondition, msg, job.Name)
	}
	now, err := j.s.now(ctx)
	if err != nil {
		return nil, j.s.status("preview job", err, "")
	}
	sched, err := schedule.Parse(scheduler.SpecOf(*job.Schedule), job.CreatedAt)
	if err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "job %q: its schedule no longer parses: %v", job.Name, err)
	}
	times := upcoming(sched, nextRun(job), now, count)
	out, err := fireTimes(job.Schedule, times)
	if err != nil {
		return nil, j.s.status("preview job", err, "")
	}
	return &tockv1.PreviewJobResponse{FireTimes: out}, nil
}

// upcoming returns up to n nominal times from first on (first included) that are not
// before now. Walking from first keeps the phase of an interval schedule.
func upcoming(sched schedule.Schedule, first, now time.Time, n int) []time.Time {
	t := first
	for skipped := 0; !t.IsZero() && t.Before(now) && skipped < maxPreviewSkip; skipped++ {
		t = sched.Next(t)
	}
	if t.IsZero() {
		return nil
	}
	if t.Before(now) {
		// Too far behind to walk: the schedule's times after now, without an interval's
		// phase.
		return schedule.Preview(sched, now, n)
	}
	return append([]time.Time{t}, schedule.Preview(sched, t, n-1)...)
}

// fireTimes shows nominal times in UTC and in the schedule's zone.
func fireTimes(s *store.Schedule, times []time.Time) ([]*tockv1.FireTime, error) {
	loc, err := schedule.LoadLocation(s.Timezone)
	if err != nil {
		return nil, err
	}
	out := make([]*tockv1.FireTime, 0, len(times))
	for _, t := range times {
		out = append(out, &tockv1.FireTime{Time: timestamppb.New(t), LocalTime: t.In(loc).Format(time.RFC3339Nano)})
	}
	return out, nil
}
