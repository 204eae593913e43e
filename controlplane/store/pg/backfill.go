package pg

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tockhq/tock/controlplane/store"
)

// Backfill records the fires params.Plan decides for a job, in one transaction, as
// FireDueJobs records a plan's fires: a nominal time already recorded is left as it was. The
// job's row is locked meanwhile. It returns the fires it recorded, or ErrNotFound when the
// job does not exist. Plan may be called more than once when the transaction is retried.
func (s *Store) Backfill(ctx context.Context, params store.BackfillParams) ([]store.Fire, error) {
	if params.Plan == nil {
		return nil, errors.New("backfill: no plan")
	}
	var fires []store.Fire
	err := s.inTx(ctx, func(tx pgx.Tx, now time.Time) error {
		fires = nil
		job, err := getJob(ctx, tx, params.Job, s.dialect.rowLock)
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
		return nil, fmt.Errorf("backfill job %q: %w", params.Job, interpretError(err))
	}
	return fires, nil
}
