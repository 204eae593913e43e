package agent

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	handlerv1 "github.com/tockhq/tock/proto/tock/handler/v1"
	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
)

const (
	reconnectMin = 100 * time.Millisecond
	reconnectMax = 5 * time.Second
	// appCallTimeout bounds ListHandlers calls.
	appCallTimeout = 5 * time.Second
)

// serviceStream is the live Execute stream to the local service.
type serviceStream struct {
	gen uint64 // grows with every stream; executions remember the one they started on
	out *queue[*handlerv1.ExecuteRequest]
}

// runService keeps an Execute stream open to the local service, reconnecting with backoff
// and jitter whenever it breaks, until ctx is done.
func (a *Agent) runService(ctx context.Context) {
	bo := newBackoff(reconnectMin, reconnectMax)
	for {
		up, err := a.serviceSession(ctx)
		if ctx.Err() != nil {
			return
		}
		if up >= reconnectMax {
			bo.reset() // the stream was healthy for a while; reconnect quickly
		}
		delay := bo.next()
		a.log.Warn("local service unavailable; reconnecting", "app_addr", a.cfg.AppAddr,
			"error", err, "retry_in", delay)
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
	}
}

// serviceSession lists the service's handlers, opens an Execute stream and serves it until it
// breaks. It returns how long the stream was up and why it ended.
func (a *Agent) serviceSession(ctx context.Context) (time.Duration, error) {
	names, err := a.listHandlers(ctx)
	if err != nil {
		return 0, err
	}
	a.setHandlers(names)

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	es, err := a.appClient.Execute(sctx)
	if err != nil {
		return 0, fmt.Errorf("open execute stream: %w", err)
	}

	svc := &serviceStream{out: newQueue[*handlerv1.ExecuteRequest]()}
	a.mu.Lock()
	a.svcGen++
	svc.gen = a.svcGen
	a.svc = svc
	a.registrationChangedLocked()
	a.mu.Unlock()
	began := time.Now()
	a.log.Info("connected to local service", "app_addr", a.cfg.AppAddr, "handlers", names)

	var writer sync.WaitGroup
	writer.Go(func() {
		for {
			select {
			case <-sctx.Done():
				return
			case <-svc.out.ready:
				for _, m := range svc.out.take() {
					if err := es.Send(m); err != nil {
						cancel() // Recv fails next and the stream is torn down
						return
					}
				}
			}
		}
	})

	for {
		m, rerr := es.Recv()
		if rerr != nil {
			err = rerr
			break
		}
		a.onServiceMessage(svc.gen, m)
	}
	a.serviceLost(svc.gen, err)
	cancel()
	writer.Wait()
	return time.Since(began), fmt.Errorf("execute stream: %w", err)
}

// refreshHandlers asks the service for its handlers every HandlerRefresh until ctx is done.
func (a *Agent) refreshHandlers(ctx context.Context) {
	ticker := time.NewTicker(a.cfg.HandlerRefresh)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		if !a.ServiceHealthy() {
			continue // the reconnect lists handlers first
		}
		names, err := a.listHandlers(ctx)
		if err != nil {
			if ctx.Err() == nil {
				a.log.Warn("refresh handlers", "error", err)
			}
			continue
		}
		a.setHandlers(names)
	}
}

// listHandlers returns the service's handler names, sorted.
func (a *Agent) listHandlers(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, appCallTimeout)
	defer cancel()
	resp, err := a.appClient.ListHandlers(ctx, &handlerv1.ListHandlersRequest{})
	if err != nil {
		return nil, fmt.Errorf("list handlers: %w", err)
	}
	names := make([]string, 0, len(resp.GetHandlers()))
	for _, h := range resp.GetHandlers() {
		if h.GetName() != "" {
			names = append(names, h.GetName())
		}
	}
	sort.Strings(names)
	return slices.Compact(names), nil
}

// setHandlers records the service's handler list; heartbeats and the registration pick up a
// change.
func (a *Agent) setHandlers(names []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.handlers != nil && slices.Equal(a.handlers, names) {
		return
	}
	a.handlers = names
	a.log.Info("handlers changed", "handlers", names)
	a.registrationChangedLocked()
}

// appTarget turns the configured address into a gRPC target: unix sockets keep their scheme,
// host:port is dialled as given.
func appTarget(addr string) string {
	if strings.HasPrefix(addr, "unix:") {
		return addr
	}
	return "passthrough:///" + addr
}

func (a *Agent) appDialOptions() []grpc.DialOption {
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(clientStatsHandler(a.cfg.TracerProvider)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:                10 * time.Second,
			Timeout:             5 * time.Second,
			PermitWithoutStream: true,
		}),
		// Reconnect as fast as the agent's own loop does, not after gRPC's default 120s cap.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: grpcbackoff.Config{
				BaseDelay:  reconnectMin,
				Multiplier: 1.6,
				Jitter:     0.2,
				MaxDelay:   reconnectMax,
			},
			MinConnectTimeout: appCallTimeout,
		}),
	}
	if a.cfg.AppToken != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearerToken(a.cfg.AppToken)))
	}
	return append(opts, a.cfg.AppDialOptions...)
}

// bearerToken sends the shared token to the local service on every call.
type bearerToken string

func (t bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

// RequireTransportSecurity is false: the local service is reached over loopback or a unix
// socket.
func (bearerToken) RequireTransportSecurity() bool { return false }
