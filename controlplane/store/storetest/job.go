package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tockhq/tock/controlplane/store"
)

var jobTests = []test{
	{"CreateAndGet", func(t *testing.T, b *bundle) {
		before := b.now(t)
		job := newJob("invoice")
		job.NextFireAt = before.Add(time.Hour)
		job.Version = 7                        // set by the store
		job.CreatedAt = before.Add(-time.Hour) // set by the store
		created := b.createJob(t, job)

		require.Equal(t, int64(1), created.Version)
		require.False(t, created.CreatedAt.Before(before))
		require.Equal(t, created.CreatedAt, created.UpdatedAt)
		want := job
		want.Version, want.CreatedAt, want.UpdatedAt = 1, created.CreatedAt, created.UpdatedAt
		require.Equal(t, want, created)

		got, err := b.st.GetJob(b.ctx, "invoice")
		require.NoError(t, err)
		require.Equal(t, created, got)
	}},
	{"ZeroValues", func(t *testing.T, b *bundle) {
		job := store.Job{Name: "bare", Handler: "svc/h"}
		created := b.createJob(t, job)
		got, err := b.st.GetJob(b.ctx, "bare")
		require.NoError(t, err)
		require.Equal(t, created, got)
		require.Nil(t, got.Schedule)
		require.Nil(t, got.Selector)
		require.Nil(t, got.Payload)
		require.True(t, got.NextFireAt.IsZero())
	}},
	{"ScheduleKinds", func(t *testing.T, b *bundle) {
		at := b.now(t).Add(time.Hour)
		for name, sched := range map[string]*store.Schedule{
			"cron":     {Cron: "0 0 9 * * MON-FRI", Timezone: "America/New_York"},
			"interval": {Interval: 90 * time.Second},
			"at":       {At: at},
		} {
			job := newJob(name)
			job.Schedule = sched
			b.createJob(t, job)
			got, err := b.st.GetJob(b.ctx, name)
			require.NoError(t, err)
			require.Equal(t, sched.Cron, got.Schedule.Cron, name)
			require.Equal(t, sched.Interval, got.Schedule.Interval, name)
			require.Equal(t, sched.Timezone, got.Schedule.Timezone, name)
			requireTime(t, sched.At, got.Schedule.At, name)
		}
	}},
	{"DuplicateName", func(t *testing.T, b *bundle) {
		b.createJob(t, newJob("dup"))
		_, err := b.st.CreateJob(b.ctx, newJob("dup"))
		require.ErrorIs(t, err, store.ErrAlreadyExists)
	}},
	{"GetUnknown", func(t *testing.T, b *bundle) {
		_, err := b.st.GetJob(b.ctx, "nope")
		require.ErrorIs(t, err, store.ErrNotFound)
	}},
	{"ListPages", func(t *testing.T, b *bundle) {
		for _, name := range []string{"b", "d", "a", "e", "c"} {
			b.createJob(t, newJob(name))
		}
		names := func(p store.ListJobsParams) []string {
			jobs, err := b.st.ListJobs(b.ctx, p)
			require.NoError(t, err)
			out := []string{}
			for _, j := range jobs {
				out = append(out, j.Name)
			}
			return out
		}
		require.Equal(t, []string{"a", "b", "c", "d", "e"}, names(store.ListJobsParams{}))
		require.Equal(t, []string{"a", "b"}, names(store.ListJobsParams{Limit: 2}))
		require.Equal(t, []string{"c", "d"}, names(store.ListJobsParams{After: "b", Limit: 2}))
		require.Equal(t, []string{"e"}, names(store.ListJobsParams{After: "d", Limit: 2}))
		require.Equal(t, []string{}, names(store.ListJobsParams{After: "e", Limit: 2}))
	}},
	{"ListEmpty", func(t *testing.T, b *bundle) {
		jobs, err := b.st.ListJobs(b.ctx, store.ListJobsParams{})
		require.NoError(t, err)
		require.Empty(t, jobs)
	}},
	{"Update", func(t *testing.T, b *bundle) {
		created := b.createJob(t, newJob("upd"))
		b.pass(t, time.Millisecond)
		next := b.now(t).Add(time.Minute)
		updated, err := b.st.UpdateJob(b.ctx, "upd", func(j *store.Job) error {
			require.Equal(t, created, *j)
			j.Handler = "billing/refund"
			j.Paused = true
			j.Priority = 9
			j.Selector = map[string]string{"zone": "us"}
			j.Schedule = &store.Schedule{Interval: time.Minute}
			j.NextFireAt = next
			j.ResumedAt = next.Add(-time.Second)
			j.Name = "renamed"                  // not changeable
			j.Version = 100                     // not changeable
			j.CreatedAt = time.Unix(0, 0).UTC() // not changeable
			return nil
		})
		require.NoError(t, err)
		require.Equal(t, "upd", updated.Name)
		require.Equal(t, int64(2), updated.Version)
		require.Equal(t, created.CreatedAt, updated.CreatedAt)
		require.True(t, updated.UpdatedAt.After(created.UpdatedAt))
		require.Equal(t, "billing/refund", updated.Handler)
		require.True(t, updated.Paused)
		require.Equal(t, 9, updated.Priority)
		require.Equal(t, map[string]string{"zone": "us"}, updated.Selector)
		require.Equal(t, &store.Schedule{Interval: time.Minute}, updated.Schedule)
		requireTime(t, next, updated.NextFireAt)
		requireTime(t, next.Add(-time.Second), updated.ResumedAt)

		got, err := b.st.GetJob(b.ctx, "upd")
		require.NoError(t, err)
		require.Equal(t, updated, got)
		_, err = b.st.GetJob(b.ctx, "renamed")
		require.ErrorIs(t, err, store.ErrNotFound)

		again, err := b.st.UpdateJob(b.ctx, "upd", func(*store.Job) error { return nil })
		require.NoError(t, err)
		require.Equal(t, int64(3), again.Version)
	}},
	{"UpdateCallbackError", func(t *testing.T, b *bundle) {
		created := b.createJob(t, newJob("upd"))
		boom := errors.New("boom")
		_, err := b.st.UpdateJob(b.ctx, "upd", func(j *store.Job) error {
			j.Handler = "changed/anyway"
			return boom
		})
		require.Equal(t, boom, err, "the callback's error is returned as is")
		got, err := b.st.GetJob(b.ctx, "upd")
		require.NoError(t, err)
		require.Equal(t, created, got, "an aborted update changes nothing")
	}},
	{"UpdateUnknown", func(t *testing.T, b *bundle) {
		_, err := b.st.UpdateJob(b.ctx, "nope", func(*store.Job) error {
			t.Error("update called for a job that does not exist")
			return nil
		})
		require.ErrorIs(t, err, store.ErrNotFound)
	}},
	{"DeleteWithFiresAndExecutions", func(t *testing.T, b *bundle) {
		job := newJob("gone")
		job.NextFireAt = b.now(t).Add(-time.Second)
		job = b.createJob(t, job)
		keep := b.createJob(t, newJob("kept"))
		fires, err := b.st.FireDueJobs(b.ctx, store.FireDueParams{Limit: 10, Plan: asDue(dispatchOnce)})
		require.NoError(t, err)
		require.Len(t, fires, 1)
		manual := b.createExec(t, job, nil)
		other := b.createExec(t, keep, nil)

		require.NoError(t, b.st.DeleteJob(b.ctx, "gone"))

		_, err = b.st.GetJob(b.ctx, "gone")
		require.ErrorIs(t, err, store.ErrNotFound)
		left, err := b.st.ListFires(b.ctx, store.ListFiresParams{Job: "gone"})
		require.NoError(t, err)
		require.Empty(t, left)
		execs, err := b.st.ListExecutions(b.ctx, store.ListExecutionsParams{Job: "gone"})
		require.NoError(t, err)
		require.Empty(t, execs)
		for _, id := range []string{manual.ID, fires[0].ExecutionID} {
			_, err = b.st.GetExecution(b.ctx, id)
			require.ErrorIs(t, err, store.ErrNotFound)
		}
		b.get(t, other.ID) // another job's execution stays

		require.ErrorIs(t, b.st.DeleteJob(b.ctx, "gone"), store.ErrNotFound)
	}},
}
