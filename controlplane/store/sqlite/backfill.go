package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tockhq/tock/controlplane/store"
)

// Backfill records the fires params.Plan decides for a job, in one transaction, as
// FireDueJobs records a plan's fires: a nominal time already recorded is left as it was. It
// returns the fires it recorded, or ErrNotFound when the job does not exist.
func (s *Store) Backfill(ctx context.Context, params store.BackfillParams) ([]store.Fire, error) {
	if params.Plan == nil {
		return nil, errors.New("backfill: no plan")
	}
	var fires []store.Fire
	err := s.inTx(ctx, func(tx *sql.Tx, now time.Time) error {
		fires = nil
		job, err := getJob(ctx, tx, params.Job)
		if err != nil {
			return err
		}
		live, err := countLive(ctx, tx, []string{job.Name})
		if err != nil {
			return err
		}
		plan := params.Plan(store.DueJob{Job: job, Live: live[job.Name]}, now)
		for _, planned := range plan.Fires {
			fire, recorded, err := recordFire(ctx, tx, job, planned, now)
			if err != nil {
				return err
			}
			if recorded {
				fires = append(fires, fire)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("backfill job %q: %w", params.Job, err)
	}
	return fires, nil
}
