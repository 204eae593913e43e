package api

import (
	"context"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/tockhq/tock/controlplane/scheduler"
	"github.com/tockhq/tock/controlplane/store"
	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

// jobService implements tock.v1.JobService.
type jobService struct {
	tockv1.UnimplementedJobServiceServer
	s *Server
}

func (j *jobService) CreateJob(ctx context.Context, req *tockv1.CreateJobRequest) (*tockv1.CreateJobResponse, error) {
	now, err := j.s.now(ctx)
	if err != nil {
		return nil, j.s.status("create job", err, "")
	}
	job, err := jobFromProto(req.GetJob(), now)
	if err != nil {
		return nil, j.s.status("create job", err, "")
	}
	job.NextFireAt = firstFire(job.Schedule, now)
	created, err := j.s.store.CreateJob(ctx, job)
	if err != nil {
		return nil, j.s.status("create job", err, "job "+quote(job.Name))
	}
	j.s.scheduler.Wake()
	return &tockv1.CreateJobResponse{Job: jobToProto(created)}, nil
}

func (j *jobService) GetJob(ctx context.Context, req *tockv1.GetJobRequest) (*tockv1.GetJobResponse, error) {
	if err := validateName("name", req.GetName()); err != nil {
		return nil, j.s.status("get job", err, "")
	}
	job, err := j.s.store.GetJob(ctx, req.GetName())
	if err != nil {
		return nil, j.s.status("get job", err, "job "+quote(req.GetName()))
	}
	return &tockv1.GetJobResponse{Job: jobToProto(job)}, nil
}

func (j *jobService) ListJobs(ctx context.Context, req *tockv1.ListJobsRequest) (*tockv1.ListJobsResponse, error) {
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, j.s.status("list jobs", err, "")
	}
	after, err := decodeToken(req.GetPageToken())
	if err != nil {
		return nil, j.s.status("list jobs", err, "")
	}
	jobs, err := j.s.store.ListJobs(ctx, store.ListJobsParams{After: after, Limit: size})
	if err != nil {
		return nil, j.s.status("list jobs", err, "")
	}
	resp := &tockv1.ListJobsResponse{Jobs: make([]*tockv1.Job, 0, len(jobs))}
	for _, job := range jobs {
		resp.Jobs = append(resp.Jobs, jobToProto(job))
	}
	if len(jobs) == size {
		resp.NextPageToken = encodeToken(jobs[len(jobs)-1].Name)
	}
	return resp, nil
}

func (j *jobService) UpdateJob(ctx context.Context, req *tockv1.UpdateJobRequest) (*tockv1.UpdateJobResponse, error) {
	name := req.GetJob().GetName()
	if err := validateName("job.name", name); err != nil {
		return nil, j.s.status("update job", err, "")
	}
	now, err := j.s.now(ctx)
	if err != nil {
		return nil, j.s.status("update job", err, "")
	}
	paths := req.GetUpdateMask().GetPaths()
	updated, err := j.s.store.UpdateJob(ctx, name, func(job *store.Job) error {
		merged, err := mergeJob(jobToProto(*job), req.GetJob(), paths)
		if err != nil {
			return err
		}
		next, err := jobFromProto(merged, now)
		if err != nil {
			return err
		}
		scheduleChanged := !sameSchedule(job.Schedule, next.Schedule)
		next.Paused, next.NextFireAt, next.ResumedAt = job.Paused, job.NextFireAt, job.ResumedAt
		if scheduleChanged {
			next.NextFireAt = firstFire(next.Schedule, now)
		}
		next.CreatedAt, next.Version = job.CreatedAt, job.Version
		*job = next
		return nil
	})
	if err != nil {
		return nil, j.s.status("update job", err, "job "+quote(name))
	}
	j.s.scheduler.Wake()
	return &tockv1.UpdateJobResponse{Job: jobToProto(updated)}, nil
}

func (j *jobService) DeleteJob(ctx context.Context, req *tockv1.DeleteJobRequest) (*tockv1.DeleteJobResponse, error) {
	if err := validateName("name", req.GetName()); err != nil {
		return nil, j.s.status("delete job", err, "")
	}
	if err := j.s.store.DeleteJob(ctx, req.GetName()); err != nil {
		return nil, j.s.status("delete job", err, "job "+quote(req.GetName()))
	}
	return &tockv1.DeleteJobResponse{}, nil
}

func (j *jobService) PauseJob(ctx context.Context, req *tockv1.PauseJobRequest) (*tockv1.PauseJobResponse, error) {
	job, err := j.setPaused(ctx, req.GetName(), true)
	if err != nil {
		return nil, j.s.status("pause job", err, "job "+quote(req.GetName()))
	}
	return &tockv1.PauseJobResponse{Job: jobToProto(job)}, nil
}

func (j *jobService) ResumeJob(ctx context.Context, req *tockv1.ResumeJobRequest) (*tockv1.ResumeJobResponse, error) {
	job, err := j.setPaused(ctx, req.GetName(), false)
	if err != nil {
		return nil, j.s.status("resume job", err, "job "+quote(req.GetName()))
	}
	j.s.scheduler.Wake()
	return &tockv1.ResumeJobResponse{Job: jobToProto(job)}, nil
}

// setPaused pauses or resumes a job. While a job is paused its nominal times are recorded as
// skipped_paused. A resumed job keeps its next fire time and records when it was resumed
// (database clock): the scheduler records the nominal times before that as skipped_paused and
// runs the job from its first nominal time after it, so no time goes unrecorded.
func (j *jobService) setPaused(ctx context.Context, name string, paused bool) (store.Job, error) {
	if err := validateName("name", name); err != nil {
		return store.Job{}, err
	}
	now, err := j.s.now(ctx)
	if err != nil {
		return store.Job{}, err
	}
	return j.s.store.UpdateJob(ctx, name, func(job *store.Job) error {
		if job.Paused == paused {
			return nil
		}
		job.Paused = paused
		if !paused {
			job.ResumedAt = now
		}
		return nil
	})
}

func (j *jobService) TriggerJob(ctx context.Context, req *tockv1.TriggerJobRequest) (*tockv1.TriggerJobResponse, error) {
	if err := validateName("name", req.GetName()); err != nil {
		return nil, j.s.status("trigger job", err, "")
	}
	if err := validateRequestID("request_id", req.GetRequestId()); err != nil {
		return nil, j.s.status("trigger job", err, "")
	}
	job, err := j.s.store.GetJob(ctx, req.GetName())
	if err != nil {
		return nil, j.s.status("trigger job", err, "job "+quote(req.GetName()))
	}
	now, err := j.s.now(ctx)
	if err != nil {
		return nil, j.s.status("trigger job", err, "")
	}
	exec := scheduler.NewExecution(job, now, store.TriggerManual)
	if req.GetPayload() != nil {
		payload, ct, err := payloadFromValue(req.GetPayload())
		if err != nil {
			return nil, j.s.status("trigger job", invalid("payload", "is not valid JSON: %v", err), "")
		}
		if len(payload) > MaxPayloadBytes {
			return nil, j.s.status("trigger job", invalid("payload", "is %d bytes; the limit is %d", len(payload), MaxPayloadBytes), "")
		}
		exec.Payload, exec.ContentType = payload, ct
	}
	endTrace := j.s.traceTrigger(ctx, &exec)
	var (
		out     store.Execution
		created = true
	)
	if key := req.GetRequestId(); key != "" {
		out, created, err = j.s.store.CreateExecutionOnce(ctx, exec, key)
	} else {
		out, err = j.s.store.CreateExecution(ctx, exec)
	}
	endTrace(out, created, err)
	if err != nil {
		return nil, j.s.status("trigger job", err, "job "+quote(req.GetName()))
	}
	if created {
		j.s.dispatcher.Wake()
	}
	return &tockv1.TriggerJobResponse{Execution: executionToProto(out)}, nil
}

func (j *jobService) ListFires(ctx context.Context, req *tockv1.ListFiresRequest) (*tockv1.ListFiresResponse, error) {
	if err := validateName("job", req.GetJob()); err != nil {
		return nil, j.s.status("list fires", err, "")
	}
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, j.s.status("list fires", err, "")
	}
	cursor, err := decodeToken(req.GetPageToken())
	if err != nil {
		return nil, j.s.status("list fires", err, "")
	}
	var before time.Time
	if cursor != "" {
		if before, err = time.Parse(time.RFC3339Nano, cursor); err != nil {
			return nil, j.s.status("list fires", invalid("page_token", "is not a token returned by this API"), "")
		}
	}
	if _, err := j.s.store.GetJob(ctx, req.GetJob()); err != nil {
		return nil, j.s.status("list fires", err, "job "+quote(req.GetJob()))
	}
	fires, err := j.s.store.ListFires(ctx, store.ListFiresParams{Job: req.GetJob(), Before: before, Limit: size})
	if err != nil {
		return nil, j.s.status("list fires", err, "")
	}
	resp := &tockv1.ListFiresResponse{Fires: make([]*tockv1.Fire, 0, len(fires))}
	for _, f := range fires {
		resp.Fires = append(resp.Fires, fireToProto(f))
	}
	if len(fires) == size {
		resp.NextPageToken = encodeToken(fires[len(fires)-1].NominalTime.Format(time.RFC3339Nano))
	}
	return resp, nil
}

func sameSchedule(a, b *store.Schedule) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Cron == b.Cron && a.Interval == b.Interval && a.At.Equal(b.At) && a.Timezone == b.Timezone &&
		a.SpringForward == b.SpringForward && a.FallBack == b.FallBack
}

func quote(s string) string { return `"` + s + `"` }

// mutableJobFields are the job fields UpdateJob may change.
var mutableJobFields = []protoreflect.Name{"handler", "service", "selector", "schedule", "payload", "timeout", "retry_policy", "priority",
	"misfire_policy", "overlap_policy", "schedule_to_start_timeout", "schedule_to_close_timeout", "depends_on",
	"routing"}

// mergeJob applies the fields of src named by paths (every mutable field when paths is
// empty) onto a copy of dst.
func mergeJob(dst, src *tockv1.Job, paths []string) (*tockv1.Job, error) {
	out := proto.Clone(dst).(*tockv1.Job)
	fields := out.ProtoReflect().Descriptor().Fields()
	names := mutableJobFields
	if len(paths) > 0 {
		names = make([]protoreflect.Name, 0, len(paths))
		for _, p := range paths {
			fd := fields.ByName(protoreflect.Name(p))
			if fd == nil {
				fd = fields.ByJSONName(p)
			}
			if fd == nil || !slices.Contains(mutableJobFields, fd.Name()) {
				return nil, invalid("update_mask", "%q is not a field that can be changed; use one of %v", p, mutableJobFields)
			}
			names = append(names, fd.Name())
		}
	}
	from, to := src.ProtoReflect(), out.ProtoReflect()
	for _, n := range names {
		fd := fields.ByName(n)
		if from.Has(fd) {
			to.Set(fd, from.Get(fd))
		} else {
			to.Clear(fd)
		}
	}
	return out, nil
}

// firstFire returns the first fire time of a job whose schedule is set at now. A one-off
// time already past is its first fire all the same, so that it is not dropped unrecorded:
// the scheduler takes it as a misfire, which the job's misfire policy settles (by default
// it runs once, now; within the grace it is simply on time).
func firstFire(s *store.Schedule, now time.Time) time.Time {
	if s != nil && !s.At.IsZero() && !s.At.After(now) {
		return s.At
	}
	return scheduler.FirstFire(s, now, now)
}
