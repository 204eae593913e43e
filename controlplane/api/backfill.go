package api

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tockhq/tock/controlplane/scheduler"
	"github.com/tockhq/tock/controlplane/store"
	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

// BackfillJob fires a job for every nominal time of its schedule in [start, end), as the
// scheduler would have, honouring its overlap policy; times already fired are left as they
// are. The range must lie in the past and hold at most scheduler.MaxBackfill times.
func (j *jobService) BackfillJob(ctx context.Context, req *tockv1.BackfillJobRequest) (*tockv1.BackfillJobResponse, error) {
	const op = "backfill job"
	if err := validateName("name", req.GetName()); err != nil {
		return nil, j.s.status(op, err, "")
	}
	start, end, err := backfillRange(req)
	if err != nil {
		return nil, j.s.status(op, err, "")
	}
	now, err := j.s.now(ctx)
	if err != nil {
		return nil, j.s.status(op, err, "")
	}
	if end.After(now) {
		return nil, j.s.status(op, invalid("end", "%s is in the future; a backfill covers the past, the scheduler fires the rest", end.Format(time.RFC3339)), "")
	}
	job, err := j.s.store.GetJob(ctx, req.GetName())
	if err != nil {
		return nil, j.s.status(op, err, "job "+quote(req.GetName()))
	}
	if job.Schedule == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "job %q has no schedule to backfill; trigger it instead", job.Name)
	}
	if _, more, err := scheduler.BackfillTimes(job, start, end, scheduler.MaxBackfill); err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "job %q: its schedule no longer parses: %v", job.Name, err)
	} else if more {
		return nil, j.s.status(op, invalid("end", "the range holds more than %d nominal times; backfill it in parts", scheduler.MaxBackfill), "")
	}
	fires, err := j.s.store.Backfill(ctx, store.BackfillParams{
		Job: job.Name,
		Plan: func(due store.DueJob, now time.Time) store.FirePlan {
			return scheduler.PlanBackfill(due, start, end, now)
		},
	})
	if err != nil {
		return nil, j.s.status(op, err, "job "+quote(req.GetName()))
	}
	j.s.dispatcher.Wake()
	resp := &tockv1.BackfillJobResponse{Fires: make([]*tockv1.Fire, 0, len(fires))}
	for _, f := range fires {
		resp.Fires = append(resp.Fires, fireToProto(f))
	}
	return resp, nil
}

func backfillRange(req *tockv1.BackfillJobRequest) (start, end time.Time, err error) {
	switch {
	case req.GetStart() == nil:
		return start, end, invalid("start", "is required")
	case req.GetEnd() == nil:
		return start, end, invalid("end", "is required")
	}
	if err := req.GetStart().CheckValid(); err != nil {
		return start, end, invalid("start", "is not a valid time: %v", err)
	}
	if err := req.GetEnd().CheckValid(); err != nil {
		return start, end, invalid("end", "is not a valid time: %v", err)
	}
	start, end = req.GetStart().AsTime(), req.GetEnd().AsTime()
	if !start.Before(end) {
		return start, end, invalid("end", "(%s) must be after start (%s)", end.Format(time.RFC3339), start.Format(time.RFC3339))
	}
	return start, end, nil
}
