package worker_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tockhq/tock/sdk-go/worker"
	"github.com/tockhq/tock/sdk-go/worker/workertest"
)

func TestHeartbeat(t *testing.T) {
	t.Parallel()
	// Outside a handler it does nothing.
	worker.Heartbeat(context.Background())

	const calls = 1000
	var elapsed time.Duration
	w := worker.New(worker.Options{Logger: discardLogger()})
	w.Handle("beat", func(ctx context.Context, _ []byte) ([]byte, error) {
		start := time.Now()
		var wg sync.WaitGroup
		for range 4 { // from several goroutines at once
			wg.Go(func() {
				for range calls / 4 {
					worker.Heartbeat(ctx)
				}
			})
		}
		wg.Wait()
		elapsed = time.Since(start)
		return nil, nil
	})
	res := run(t, serveAgent(t, w), workertest.Start{Handler: "beat"})
	require.Equal(t, workertest.Succeeded, res.Outcome)
	// The first heartbeat is sent at once; later ones at most once a second.
	require.GreaterOrEqual(t, res.Heartbeats, 1)
	require.LessOrEqual(t, res.Heartbeats, 1+int(elapsed/time.Second))
}

// syncBuffer is a bytes.Buffer safe for a logger and the test to share.
type syncBuffer struct {
	mu  sync.Mutex // protects buf
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestLogger(t *testing.T) {
	t.Parallel()
	require.Same(t, slog.Default(), worker.Logger(context.Background()))

	var local syncBuffer
	localLog := slog.New(slog.NewTextHandler(&local, &slog.HandlerOptions{Level: slog.LevelInfo}))
	escaped := make(chan *slog.Logger, 1)
	w := worker.New(worker.Options{Logger: localLog})
	w.Handle("log", func(ctx context.Context, _ []byte) ([]byte, error) {
		log := worker.Logger(ctx)
		if worker.Logger(ctx) != log {
			return nil, errors.New("Logger returned a new logger for the same execution")
		}
		log.Debug("details", "n", 1)
		log.WithGroup("db").With("table", "users").Info("query done", "rows", 3, slog.Group("", "inline", true), slog.Group("empty"))
		log.Error("odd values", "empty", "", "spaced", "a b", "quote", `say "hi"`, "eq", "k=v")
		escaped <- log
		return nil, nil
	})
	res := run(t, serveAgent(t, w), workertest.Start{Handler: "log", Job: "sync", Attempt: 2})

	var lines []string
	for _, l := range res.Logs {
		lines = append(lines, l.Level+" "+l.Message)
		require.WithinDuration(t, time.Now(), l.Time, time.Minute)
	}
	require.Equal(t, []string{
		"DEBUG details n=1",
		"INFO query done db.table=users db.rows=3 db.inline=true",
		`ERROR odd values empty="" spaced="a b" quote="say \"hi\"" eq="k=v"`,
	}, lines)

	// The local logger gets the execution's attributes and honours its own level.
	out := local.String()
	require.NotContains(t, out, "details")
	require.Contains(t, out, `msg="query done" execution_id=exec-1 job=sync handler=log attempt=2 db.table=users db.rows=3`)

	// After the handler returned, records reach only the local logger.
	(<-escaped).Info("late line")
	require.Contains(t, local.String(), "late line")
}
