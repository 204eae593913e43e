package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tockhq/tock/agent"
	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

// The agent host is this program run again with roleEnv set to roleAgentHost: one process
// that runs many agents of package agent (the code tock-agent runs) side by side, each on a
// loopback port of its own, each with its own registry connection, registering with tockd's
// built-in registry and keeping its own Execute stream to the bench handler service. It lets
// W8 connect a thousand agents to one replica without a thousand processes; everything
// between tockd and the agents is real gRPC over loopback TCP, as in production.
const roleAgentHost = "agent-host"

// hostedAgentPrefix starts the id of every hosted agent: "bench-hosted-0001".
const hostedAgentPrefix = "bench-hosted-"

// init runs the agent host instead of main when this process was started as one. (main
// knows the handler service role only.)
func init() {
	if os.Getenv(roleEnv) != roleAgentHost {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := runAgentHost(ctx, os.Args[1:], os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench agent host:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// runAgentHost runs -agents agents until SIGTERM or SIGINT ends ctx, then lets them all
// drain and deregister.
func runAgentHost(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet(roleAgentHost, flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("agents", 1, "how many agents to run")
	appAddr := fs.String("app-addr", "", "`address` of the handler service")
	register := fs.String("register", "", "tockd gRPC `address` to register with")
	service := fs.String("service", benchService, "service `name` of the agents")
	capacity := fs.Int("capacity", 16, "capacity of each agent")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *appAddr == "" || *register == "" || *n < 1 {
		return errors.New("-app-addr, -register and a positive -agents are required")
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// A start-up failure ends the agents already serving, as a signal would.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var (
		wg    sync.WaitGroup
		errMu sync.Mutex // protects errs
		errs  []error
	)
	fail := func(err error) {
		errMu.Lock()
		errs = append(errs, err)
		errMu.Unlock()
		cancel()
	}
	conns := make([]*grpc.ClientConn, 0, *n)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for i := range *n {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fail(fmt.Errorf("listen for agent %d: %w", i+1, err))
			break
		}
		conn, err := grpc.NewClient("passthrough:///"+*register, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			_ = lis.Close()
			fail(fmt.Errorf("registry client: %w", err))
			break
		}
		conns = append(conns, conn)
		id := fmt.Sprintf("%s%04d", hostedAgentPrefix, i+1)
		a, err := agent.New(agent.Config{
			ID:        id,
			Service:   *service,
			Capacity:  *capacity,
			AppAddr:   *appAddr,
			Advertise: lis.Addr().String(),
			Registry:  agent.NewGRPCRegistrar(conn),
			Logger:    log.With("agent", id),
		})
		if err != nil {
			_ = lis.Close()
			fail(err)
			break
		}
		wg.Go(func() {
			if err := a.Serve(ctx, lis); err != nil {
				fail(fmt.Errorf("agent %s: %w", id, err))
			}
		})
	}
	<-ctx.Done()
	wg.Wait()
	errMu.Lock()
	defer errMu.Unlock()
	return errors.Join(errs...)
}

// startAgentHost starts an agent host with n agents of the given capacity for the cluster's
// handler service, registering with its tockd, and waits until tockd holds a session with
// every one of them and they serve the noop handler. The host is stopped with the cluster.
func (c *tockCluster) startAgentHost(ctx context.Context, n, capacity int) (*proc, error) {
	bins, err := c.env.binaries(ctx)
	if err != nil {
		return nil, err
	}
	c.env.statusf("setup "+c.cfg.Name, "starting %d agents in one agent host process (capacity %d each)", n, capacity)
	p, err := startProc(c.dir, "agent-host", nil, append(os.Environ(), roleEnv+"="+roleAgentHost), bins.self,
		"-agents", strconv.Itoa(n), "-app-addr", c.appAddr, "-register", c.grpcAddr,
		"-service", benchService, "-capacity", strconv.Itoa(capacity))
	if err != nil {
		return nil, err
	}
	c.more = append(c.more, p)
	last := time.Now()
	connected := 0
	timeout := 60*time.Second + time.Duration(n)*100*time.Millisecond
	if err := p.waitUntil(ctx, timeout, fmt.Sprintf("with %d agents connected", n), func(ctx context.Context) bool {
		k, err := c.connectedHosted(ctx)
		if err != nil {
			return false
		}
		if k != connected && time.Since(last) >= time.Second {
			c.env.statusf("setup "+c.cfg.Name, "%d/%d agents connected", k, n)
			last = time.Now()
		}
		connected = k
		return k >= n
	}); err != nil {
		return nil, err
	}
	return p, nil
}

// connectedHosted returns how many hosted agents tockd holds a session with and sees serving
// the noop handler.
func (c *tockCluster) connectedHosted(ctx context.Context) (int, error) {
	resp, err := c.agents.ListAgents(ctx, &tockv1.ListAgentsRequest{Service: benchService})
	if err != nil {
		return 0, fmt.Errorf("list agents: %w", err)
	}
	k := 0
	for _, a := range resp.GetAgents() {
		if strings.HasPrefix(a.GetId(), hostedAgentPrefix) && a.GetConnected() && slices.Contains(a.GetHandlers(), noopHandler) {
			k++
		}
	}
	return k, nil
}
