package api_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/tockhq/tock/controlplane/api"
	"github.com/tockhq/tock/controlplane/store/sqlite"
	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

// testClock is the store's clock, moved by the tests.
type testClock struct {
	mu  sync.Mutex // protects now
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// nopWaker is the scheduler and the dispatcher, which these tests do not run.
type nopWaker struct{}

func (nopWaker) Wake() {}

// apiHarness is the API served in memory over a SQLite store with an injected clock.
type apiHarness struct {
	clock     *testClock
	store     *sqlite.Store
	conn      *grpc.ClientConn
	jobs      tockv1.JobServiceClient
	schedules tockv1.ScheduleServiceClient
	execs     tockv1.ExecutionServiceClient
}

// newAPI serves the API for one test; the clock starts at now.
func newAPI(t *testing.T, now time.Time) *apiHarness {
	t.Helper()
	clock := &testClock{now: now}
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "tock.db"), sqlite.WithClock(clock.Now))
	require.NoError(t, err)
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	api.New(api.Config{}, st, nopWaker{}, nopWaker{}).Register(srv)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis)
	}()
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = conn.Close()
		srv.Stop()
		<-served
		require.NoError(t, st.Close())
	})
	return &apiHarness{
		clock:     clock,
		store:     st,
		conn:      conn,
		jobs:      tockv1.NewJobServiceClient(conn),
		schedules: tockv1.NewScheduleServiceClient(conn),
		execs:     tockv1.NewExecutionServiceClient(conn),
	}
}

// rest serves the REST gateway over the in-memory API.
func (h *apiHarness) rest(t *testing.T) *httptest.Server {
	t.Helper()
	gw, err := api.NewGateway(t.Context(), h.conn)
	require.NoError(t, err)
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	return srv
}

func (h *apiHarness) createJob(t *testing.T, job *tockv1.Job) *tockv1.Job {
	t.Helper()
	resp, err := h.jobs.CreateJob(t.Context(), &tockv1.CreateJobRequest{Job: job})
	require.NoError(t, err)
	return resp.GetJob()
}

// requireInvalid checks that err is InvalidArgument with a message containing each of want.
func requireInvalid(t *testing.T, err error, want ...string) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	for _, w := range want {
		require.Contains(t, status.Convert(err).Message(), w)
	}
}

// get sends a GET to the REST gateway and returns the status and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	return do(t, http.MethodGet, url, "")
}

// do sends a REST request with a JSON body (none when empty) and returns the status and body.
func do(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, r)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}
