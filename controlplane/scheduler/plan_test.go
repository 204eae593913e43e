package scheduler_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tockhq/tock/controlplane/scheduler"
	"github.com/tockhq/tock/controlplane/store"
)

// everySecond is a job that fires every second, due at next.
func everySecond(next time.Time) store.Job {
	return store.Job{
		Name:       "tick",
		Handler:    "echo",
		Schedule:   &store.Schedule{Cron: "* * * * * *"},
		Payload:    []byte(`{}`),
		NextFireAt: next,
		CreatedAt:  next.Add(-time.Hour),
	}
}

// outcomes returns each planned fire's nominal time offset from base, in seconds, with its
// outcome.
func outcomes(base time.Time, p store.FirePlan) map[int]store.FireOutcome {
	out := map[int]store.FireOutcome{}
	for _, f := range p.Fires {
		out[int(f.NominalTime.Sub(base)/time.Second)] = f.Outcome
	}
	return out
}

func TestPlan(t *testing.T) {
	t.Parallel()
	base := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	cfg := scheduler.PlanConfig{MisfireGrace: 5 * time.Second}

	t.Run("ClaimsAheadWithinHorizon", func(t *testing.T) {
		t.Parallel()
		now := base.Add(-300 * time.Millisecond)
		p := scheduler.Plan(cfg, store.DueJob{Job: everySecond(base)}, now, time.Second)
		require.Equal(t, map[int]store.FireOutcome{0: store.FireDispatched}, outcomes(base, p))
		require.Equal(t, base.Add(time.Second), p.NextFireAt)
		e := p.Fires[0].Execution
		require.NotNil(t, e)
		require.Equal(t, base, e.NominalTime)
		require.Equal(t, base, e.NotBefore, "held until its nominal time")
		require.Equal(t, store.TriggerSchedule, e.Trigger)
	})

	t.Run("MissedButNewestRuns", func(t *testing.T) {
		t.Parallel()
		now := base.Add(10 * time.Second)
		p := scheduler.Plan(cfg, store.DueJob{Job: everySecond(base)}, now, 0)
		got := outcomes(base, p)
		require.Len(t, got, 11)
		for i := 0; i < 5; i++ {
			require.Equal(t, store.FireMissed, got[i], "%ds is older than the grace", i)
		}
		for i := 5; i <= 10; i++ {
			require.Equal(t, store.FireDispatched, got[i], "%ds is within the grace or the newest", i)
		}
		require.Equal(t, base.Add(11*time.Second), p.NextFireAt)
	})

	t.Run("BoundedPerPlan", func(t *testing.T) {
		t.Parallel()
		p := scheduler.Plan(scheduler.PlanConfig{MaxFiresPerPlan: 3}, store.DueJob{Job: everySecond(base)}, base.Add(time.Hour), 0)
		require.Len(t, p.Fires, 3)
		require.Equal(t, base.Add(3*time.Second), p.NextFireAt, "the rest are planned next round")
	})

	t.Run("PausedSkipsReachedTimesOnly", func(t *testing.T) {
		t.Parallel()
		job := everySecond(base)
		job.Paused = true
		now := base.Add(2500 * time.Millisecond)
		p := scheduler.Plan(cfg, store.DueJob{Job: job}, now, time.Second)
		require.Equal(t, map[int]store.FireOutcome{
			0: store.FireSkippedPaused, 1: store.FireSkippedPaused, 2: store.FireSkippedPaused,
		}, outcomes(base, p), "a paused job is not claimed ahead: it may be resumed before 3s")
		for _, f := range p.Fires {
			require.Nil(t, f.Execution)
		}
		require.Equal(t, base.Add(3*time.Second), p.NextFireAt)
	})

	t.Run("ResumedSkipsTimesBeforeResume", func(t *testing.T) {
		t.Parallel()
		job := everySecond(base)
		job.ResumedAt = base.Add(2500 * time.Millisecond)
		now := base.Add(2600 * time.Millisecond)
		p := scheduler.Plan(cfg, store.DueJob{Job: job}, now, time.Second)
		require.Equal(t, map[int]store.FireOutcome{
			0: store.FireSkippedPaused, 1: store.FireSkippedPaused, 2: store.FireSkippedPaused,
			3: store.FireDispatched,
		}, outcomes(base, p), "the times reached while paused do not run, even the newest")
		require.Equal(t, base.Add(4*time.Second), p.NextFireAt)
	})

	t.Run("ResumedLongAgoChangesNothing", func(t *testing.T) {
		t.Parallel()
		job := everySecond(base)
		job.ResumedAt = base.Add(-time.Hour)
		p := scheduler.Plan(cfg, store.DueJob{Job: job}, base, 0)
		require.Equal(t, map[int]store.FireOutcome{0: store.FireDispatched}, outcomes(base, p))
	})

	t.Run("NoScheduleOrNoNextFire", func(t *testing.T) {
		t.Parallel()
		manual := everySecond(base)
		manual.Schedule = nil
		require.Equal(t, store.FirePlan{}, scheduler.Plan(cfg, store.DueJob{Job: manual}, base, time.Second))
		done := everySecond(time.Time{})
		require.Equal(t, store.FirePlan{}, scheduler.Plan(cfg, store.DueJob{Job: done}, base, time.Second))
		broken := everySecond(base)
		broken.Schedule = &store.Schedule{Cron: "not a cron"}
		require.Equal(t, store.FirePlan{}, scheduler.Plan(cfg, store.DueJob{Job: broken}, base, time.Second))
	})
}
