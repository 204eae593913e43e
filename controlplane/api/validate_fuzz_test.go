package api

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/tockhq/tock/controlplane/scheduler"
	"github.com/tockhq/tock/controlplane/store"
	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

// FuzzValidateJob feeds jobs in the REST API's JSON form to the validator: nothing may
// panic, every refusal names a field, and every job accepted can be planned and previewed.
// The corpus is in testdata/fuzz/FuzzValidateJob.
func FuzzValidateJob(f *testing.F) {
	for _, seed := range []string{
		`{"name":"a","handler":"h"}`,
		`{"name":"a","handler":"h","schedule":{"cron":"0 0 30 2 *"}}`,
		`{"name":"a","handler":"h","schedule":{"cron":"30 2 * * *","timezone":"America/New_York","springForward":"SPRING_FORWARD_SKIP","fallBack":"FALL_BACK_RUN_BOTH","jitter":"30s"}}`,
		`{"name":"a","handler":"h","schedule":{"interval":"-5s"}}`,
		`{"name":"a","handler":"h","misfirePolicy":{"action":"MISFIRE_ACTION_CATCH_UP","maxCatchUp":3,"window":"1h","grace":"2s"}}`,
		`{"name":"a","handler":"h","overlapPolicy":{"action":"OVERLAP_ACTION_ALLOW_N","maxConcurrent":0}}`,
		`{"name":"a","handler":"h","retryPolicy":{"maxAttempts":5,"jitter":0.5,"backoffCoefficient":3}}`,
		`{"name":"a","handler":"h","scheduleToStartTimeout":"0.5s","scheduleToCloseTimeout":"1h"}`,
		`{"name":"a","handler":"h","dependsOn":["b","a"]}`,
		`{"name":"a","handler":"h","schedule":{"cron":"TZ=UTC * * * *"}}`,
	} {
		f.Add([]byte(seed))
	}
	now := time.Date(2026, 3, 8, 6, 59, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		var p tockv1.Job
		if protojson.Unmarshal(data, &p) != nil {
			return
		}
		job, err := jobFromProto(&p, now)
		if err != nil {
			var fe *fieldError
			if !errors.As(err, &fe) || fe.field == "" || fe.reason == "" {
				t.Fatalf("refusal %v does not name a field", err)
			}
			return
		}
		if job.Schedule == nil {
			return
		}
		job.CreatedAt = now
		job.NextFireAt = scheduler.FirstFire(job.Schedule, now, now)
		plan := scheduler.Plan(scheduler.PlanConfig{MaxFiresPerPlan: 50}, store.DueJob{Job: job, Live: 1}, now.Add(time.Hour), time.Second)
		for i, f := range plan.Fires {
			if i > 0 && !f.NominalTime.After(plan.Fires[i-1].NominalTime) {
				t.Fatalf("fires out of order: %v", plan.Fires)
			}
		}
		if _, err := fireTimes(job.Schedule, nil); err != nil {
			t.Fatalf("accepted schedule has no zone: %v", err)
		}
	})
}
