package pg_test

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tockhq/tock/controlplane/store"
	"github.com/tockhq/tock/controlplane/store/pg"
	"github.com/tockhq/tock/controlplane/store/pg/pgtest"
)

// TestSerializationConflicts runs many goroutines on the same rows. At SERIALIZABLE the
// database aborts some of their transactions (40001); the store runs them again, counts each
// retry, and the results are those of transactions run one at a time.
func TestSerializationConflicts(t *testing.T) {
	t.Parallel()

	t.Run("UpdateJob", func(t *testing.T) {
		t.Parallel()
		db := pgtest.NewDatabase(t)
		var observed atomic.Uint64
		st := open(t, db, pg.WithRetryObserver(func() { observed.Add(1) }))
		watcher := connect(t, db)
		ctx := t.Context()
		_, err := st.CreateJob(ctx, store.Job{Name: "counter", Handler: "svc/h"})
		require.NoError(t, err)

		const workers, rounds = 8, 10
		var (
			wg    sync.WaitGroup
			once  sync.Once
			errs  = make(chan error, workers)
			start = make(chan struct{})
		)
		for range workers {
			wg.Go(func() {
				<-start
				for range rounds {
					_, err := st.UpdateJob(ctx, "counter", func(j *store.Job) error {
						// The first transaction to hold the row keeps it until another one
						// waits for it: that one must then fail and be retried.
						var waitErr error
						once.Do(func() { waitErr = lockWaiter(ctx, watcher) })
						j.Priority++
						return waitErr
					})
					if err != nil {
						errs <- err
						return
					}
				}
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}

		job, err := st.GetJob(ctx, "counter")
		require.NoError(t, err)
		require.Equal(t, workers*rounds, job.Priority, "no update was lost")
		require.Equal(t, int64(1+workers*rounds), job.Version)
		require.Positive(t, st.TxRetries(), "conflicting transactions were retried")
		require.Equal(t, st.TxRetries(), observed.Load(), "the observer saw every retry")
		t.Logf("%d updates, %d retries", workers*rounds, st.TxRetries())
	})

	t.Run("CompleteAndExpire", func(t *testing.T) {
		t.Parallel()
		db := pgtest.NewDatabase(t)
		st := open(t, db)
		ctx := t.Context()
		job, err := st.CreateJob(ctx, store.Job{Name: "work", Handler: "svc/h"})
		require.NoError(t, err)
		const execs, workers = 40, 6
		for range execs {
			_, err := st.CreateExecution(ctx, store.Execution{Job: job.Name, Handler: job.Handler})
			require.NoError(t, err)
		}
		claimed, err := st.ClaimExecutions(ctx, store.ClaimParams{
			Handlers: []string{job.Handler},
			Limit:    execs,
			Lease:    time.Millisecond,
			Pick: func(c []store.Execution) []store.Assignment {
				out := make([]store.Assignment, len(c))
				for i, e := range c {
					out[i] = store.Assignment{ExecutionID: e.ID, AgentID: "agent-1"}
				}
				return out
			},
		})
		require.NoError(t, err)
		require.Len(t, claimed, execs)
		waitUntil(t, st, claimed[len(claimed)-1].LeaseDeadline)
		refs := make([]store.Completion, len(claimed))
		for i, e := range claimed {
			refs[i] = store.Completion{ExecRef: store.ExecRef{ID: e.ID, Epoch: e.LeaseEpoch}, State: store.ExecFailed}
		}

		// Half the workers report every result, in their own order; the other half expire
		// the leases. Each attempt ends once, as reported or as lost, and is retried once.
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex // guards ended, errs
			ended    = map[string]int{}
			errs     []error
			start    = make(chan struct{})
			retryNow = func(store.Execution) (time.Time, bool) { return time.Time{}, true }
		)
		for w := range workers {
			wg.Go(func() {
				<-start
				if w%2 == 0 {
					results := append([]store.Completion(nil), refs...)
					rand.Shuffle(len(results), func(i, j int) { results[i], results[j] = results[j], results[i] })
					for i := 0; i < len(results); i += 5 {
						out, err := st.CompleteExecutions(ctx, results[i:min(i+5, len(results))], retryNow)
						mu.Lock()
						if err != nil {
							errs = append(errs, err)
						}
						for _, o := range out {
							if o.Applied {
								ended[o.ID]++
							}
						}
						mu.Unlock()
					}
					return
				}
				for {
					lost, err := st.ExpireLeases(ctx, 3, retryNow)
					mu.Lock()
					if err != nil {
						errs = append(errs, err)
					}
					for _, e := range lost {
						ended[e.ID]++
					}
					mu.Unlock()
					if err != nil || len(lost) == 0 {
						return
					}
				}
			})
		}
		close(start)
		wg.Wait()
		require.Empty(t, errs)

		for _, e := range claimed {
			require.Equal(t, 1, ended[e.ID], "attempt %s ended once", e.ID)
			got, err := st.GetExecution(ctx, e.ID)
			require.NoError(t, err)
			require.Contains(t, []store.ExecState{store.ExecFailed, store.ExecLost}, got.State)
		}
		all, err := st.ListExecutions(ctx, store.ListExecutionsParams{Job: job.Name, Limit: 1000})
		require.NoError(t, err)
		retries := map[string]int{}
		for _, e := range all {
			if e.RetryOf != "" {
				retries[e.RetryOf]++
				require.Equal(t, store.ExecPending, e.State)
				require.Equal(t, 2, e.Attempt)
			}
		}
		require.Len(t, all, 2*execs)
		for _, e := range claimed {
			require.Equal(t, 1, retries[e.ID], "attempt %s retried once", e.ID)
		}
		t.Logf("%d retries", st.TxRetries())
	})
}

// waitUntil polls the database clock until it is past at.
func waitUntil(t *testing.T, st *pg.Store, at time.Time) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		now, err := st.Now(t.Context())
		require.NoError(t, err)
		if now.After(at) {
			return
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("the database clock did not pass %s", at)
		}
	}
}
