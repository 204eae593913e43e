package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tockhq/tock/controlplane/telemetry"
	"github.com/tockhq/tock/sdk-go/worker"
	"github.com/tockhq/tock/sdk-go/worker/otelworker"
)

// The bench handler service is this program run again with roleEnv set to roleHandler: a
// user service built on sdk-go/worker whose handler "noop" does nothing but note the exact
// time it started, with the execution it ran. The benchmark reads those notes over HTTP on
// loopback; they are the ground truth for latency, lateness and duplicate runs.
const (
	roleEnv     = "TOCK_BENCH_ROLE"
	roleHandler = "handler-service"
	// noopHandler is the name of the handler jobs run.
	noopHandler = "noop"
	// sleepHandler is the name of a handler that notes its start as noop does, then sleeps
	// for the "ms" of its JSON payload ({"ms": 300}) or until its execution is cancelled.
	sleepHandler = "sleep"
)

// handlerRecord is one run of the noop handler.
type handlerRecord struct {
	ID      string `json:"id"`
	Job     string `json:"job"`
	Attempt int    `json:"attempt"`
	Epoch   int64  `json:"epoch"`
	Nominal int64  `json:"nominal"` // the execution's nominal time, Unix nanoseconds
	Start   int64  `json:"start"`   // when the handler started, Unix nanoseconds
}

// recordFilter selects records: by job-name prefix, by nominal time (From and To, inclusive)
// and by start time (StartFrom inclusive, StartTo exclusive). Zero times are unbounded.
type recordFilter struct {
	Prefix             string
	From, To           time.Time
	StartFrom, StartTo time.Time
}

func (f recordFilter) query() string {
	q := url.Values{}
	q.Set("prefix", f.Prefix)
	for k, t := range map[string]time.Time{"from": f.From, "to": f.To, "start_from": f.StartFrom, "start_to": f.StartTo} {
		if !t.IsZero() {
			q.Set(k, strconv.FormatInt(t.UnixNano(), 10))
		}
	}
	return q.Encode()
}

// bounds are a recordFilter in Unix nanoseconds, as the handler service reads it.
type bounds struct {
	prefix                       string
	from, to, startFrom, startTo int64
}

func parseBounds(q url.Values) bounds {
	n := func(k string) int64 {
		v, _ := strconv.ParseInt(q.Get(k), 10, 64)
		return v
	}
	return bounds{prefix: q.Get("prefix"), from: n("from"), to: n("to"), startFrom: n("start_from"), startTo: n("start_to")}
}

// match reports whether r is within b.
func (b bounds) match(r handlerRecord) bool {
	return strings.HasPrefix(r.Job, b.prefix) &&
		(b.from == 0 || r.Nominal >= b.from) && (b.to == 0 || r.Nominal <= b.to) &&
		(b.startFrom == 0 || r.Start >= b.startFrom) && (b.startTo == 0 || r.Start < b.startTo)
}

// recordBook holds the records of the handler service.
type recordBook struct {
	mu      sync.Mutex // protects records
	records []handlerRecord
}

func (b *recordBook) add(r handlerRecord) {
	b.mu.Lock()
	b.records = append(b.records, r)
	b.mu.Unlock()
}

// match returns the records within f; when countOnly it returns only how many.
func (b *recordBook) match(f bounds, countOnly bool) (int, []handlerRecord) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	var out []handlerRecord
	for _, r := range b.records {
		if !f.match(r) {
			continue
		}
		n++
		if !countOnly {
			out = append(out, r)
		}
	}
	return n, out
}

// runHandlerService serves the noop handler on -listen and the records on -records until
// SIGTERM or SIGINT ends ctx.
func runHandlerService(ctx context.Context, args []string, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet(roleHandler, flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "", "`address` the agent calls the handlers on")
	records := fs.String("records", "", "`address` of the HTTP endpoint that returns the records")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *listen == "" || *records == "" {
		return errors.New("-listen and -records are required")
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	book := &recordBook{}
	opts := worker.Options{Logger: log, ShutdownTimeout: 5 * time.Second}
	// With an OTLP endpoint in the environment (W9) the handlers are traced as a user's
	// service would trace them: the SDK's interceptor, and a tracer provider built from the
	// OTEL_* variables as tockd's and the agent's are. Without one, no interceptor runs.
	tracing, err := telemetry.NewTracing(ctx, telemetry.TracingConfig{ServiceName: "tock-bench-handler"})
	if err != nil {
		return fmt.Errorf("set up tracing: %w", err)
	}
	defer func() {
		if serr := tracing.Shutdown(ctx); serr != nil && err == nil {
			err = serr
		}
	}()
	if tracing.Exporting {
		opts.Interceptors = []worker.Interceptor{otelworker.NewInterceptor(otelworker.WithTracerProvider(tracing.Provider))}
	}
	w := worker.New(opts)
	note := func(ctx context.Context, start time.Time) {
		ex, _ := worker.ExecutionFromContext(ctx)
		book.add(handlerRecord{
			ID: ex.ID, Job: ex.Job, Attempt: ex.Attempt, Epoch: ex.LeaseEpoch,
			Nominal: ex.NominalTime.UnixNano(), Start: start.UnixNano(),
		})
	}
	w.Handle(noopHandler, func(ctx context.Context, _ []byte) ([]byte, error) {
		note(ctx, time.Now())
		return nil, nil
	})
	w.Handle(sleepHandler, func(ctx context.Context, payload []byte) ([]byte, error) {
		note(ctx, time.Now())
		var in struct {
			MS int64 `json:"ms"`
		}
		if len(payload) > 0 {
			if err := json.Unmarshal(payload, &in); err != nil {
				return nil, fmt.Errorf("sleep: payload: %w", err)
			}
		}
		return nil, sleepCtx(ctx, time.Duration(in.MS)*time.Millisecond)
	})

	mux := http.NewServeMux()
	mux.HandleFunc("GET /count", func(rw http.ResponseWriter, r *http.Request) {
		n, _ := book.match(parseBounds(r.URL.Query()), true)
		fmt.Fprintln(rw, n)
	})
	mux.HandleFunc("GET /records", func(rw http.ResponseWriter, r *http.Request) {
		_, recs := book.match(parseBounds(r.URL.Query()), false)
		rw.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(rw).Encode(recs)
	})
	recLis, err := net.Listen("tcp", *records)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(recLis) }()
	defer srv.Close()

	lis, err := worker.Listen(*listen)
	if err != nil {
		return err
	}
	return w.Serve(ctx, lis)
}

// handlerClient reads the records of a bench handler service.
type handlerClient struct {
	base string
	http *http.Client
}

func newHandlerClient(addr string) *handlerClient {
	return &handlerClient{base: "http://" + addr, http: &http.Client{Timeout: 60 * time.Second}}
}

func (c *handlerClient) get(ctx context.Context, path string, out any) error {
	return fetchJSON(ctx, c.http, c.base+path, out)
}

// count returns how many records f selects.
func (c *handlerClient) count(ctx context.Context, f recordFilter) (int, error) {
	var n int
	err := c.get(ctx, "/count?"+f.query(), &n)
	return n, err
}

// records returns the records f selects.
func (c *handlerClient) records(ctx context.Context, f recordFilter) ([]handlerRecord, error) {
	var recs []handlerRecord
	err := c.get(ctx, "/records?"+f.query(), &recs)
	return recs, err
}

// handlerServiceMain is main for the handler-service role.
func handlerServiceMain(ctx context.Context) int {
	if err := runHandlerService(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench handler service:", err)
		return 1
	}
	return 0
}
