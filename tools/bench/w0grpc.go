package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The gRPC ceiling uses a service with one bidirectional streaming method that echoes every
// message back, written by hand so that no generated code is needed.
const (
	echoMethod = "/tock.bench.Echo/Stream"
	// echoSize is the payload of every message, as in grpc-go's own benchmark.
	echoSize = 128
	// concurrentStreams is how many streams the concurrent ping-pong runs.
	concurrentStreams = 64
	// maxRTTSamples bounds the round-trip samples kept per measurement.
	maxRTTSamples = 2_000_000
)

// echoService is the (empty) interface implementations of the echo service satisfy.
type echoService interface{}

var echoDesc = grpc.ServiceDesc{
	ServiceName: "tock.bench.Echo",
	HandlerType: (*echoService)(nil),
	Streams: []grpc.StreamDesc{{
		StreamName:    "Stream",
		Handler:       echoStream,
		ServerStreams: true,
		ClientStreams: true,
	}},
}

// echoStream sends every message it receives back, until the client closes its side.
func echoStream(_ any, stream grpc.ServerStream) error {
	m := new(wrapperspb.BytesValue)
	for {
		if err := stream.RecvMsg(m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err := stream.SendMsg(m); err != nil {
			return err
		}
	}
}

// echo is the echo server and a client connection to it, both in this process.
type echo struct {
	srv  *grpc.Server
	conn *grpc.ClientConn
}

func startEcho() (*echo, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := grpc.NewServer()
	srv.RegisterService(&echoDesc, struct{}{})
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		srv.Stop()
		return nil, err
	}
	return &echo{srv: srv, conn: conn}, nil
}

func (e *echo) stop() {
	_ = e.conn.Close()
	e.srv.Stop()
}

func (e *echo) open(ctx context.Context) (grpc.ClientStream, error) {
	return e.conn.NewStream(ctx, &echoDesc.Streams[0], echoMethod)
}

// pingPong sends a message and waits for its echo, again and again for d (after a short
// warm-up), and returns the round trips per second and each round trip in microseconds.
func (e *echo) pingPong(ctx context.Context, d time.Duration) (float64, []float64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := e.open(ctx)
	if err != nil {
		return 0, nil, err
	}
	msg := &wrapperspb.BytesValue{Value: make([]byte, echoSize)}
	reply := new(wrapperspb.BytesValue)
	roundTrip := func() error {
		if err := s.SendMsg(msg); err != nil {
			return err
		}
		return s.RecvMsg(reply)
	}
	for range 1000 {
		if err := roundTrip(); err != nil {
			return 0, nil, fmt.Errorf("ping-pong warm-up: %w", err)
		}
	}
	rtts := make([]float64, 0, 1<<16)
	start := time.Now()
	end := start.Add(d)
	n := 0
	for {
		t := time.Now()
		if !t.Before(end) || n >= maxRTTSamples {
			break
		}
		if err := roundTrip(); err != nil {
			return 0, nil, fmt.Errorf("ping-pong: %w", err)
		}
		rtts = append(rtts, float64(time.Since(t))/float64(time.Microsecond))
		n++
	}
	elapsed := time.Since(start)
	_ = s.CloseSend()
	return float64(n) / elapsed.Seconds(), rtts, nil
}

// pipelined sends messages without waiting for replies for d while another goroutine
// receives the echoes, and returns the echoes received per second.
func (e *echo) pipelined(ctx context.Context, d time.Duration) (float64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := e.open(ctx)
	if err != nil {
		return 0, err
	}
	var received atomic.Int64
	recvErr := make(chan error, 1)
	go func() {
		m := new(wrapperspb.BytesValue)
		for {
			if err := s.RecvMsg(m); err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				recvErr <- err
				return
			}
			received.Add(1)
		}
	}()
	msg := &wrapperspb.BytesValue{Value: make([]byte, echoSize)}
	start := time.Now()
	end := start.Add(d)
	for time.Now().Before(end) {
		// Check the clock every 64 messages only.
		for range 64 {
			if err := s.SendMsg(msg); err != nil {
				return 0, fmt.Errorf("pipelined send: %w", err)
			}
		}
	}
	if err := s.CloseSend(); err != nil {
		return 0, err
	}
	select {
	case err := <-recvErr:
		if err != nil {
			return 0, fmt.Errorf("pipelined receive: %w", err)
		}
	case <-time.After(30 * time.Second):
		return 0, errors.New("pipelined: echoes still missing 30 s after the last send")
	}
	return float64(received.Load()) / time.Since(start).Seconds(), nil
}

// concurrent runs ping-pong on n streams of the one connection at once for d and returns
// the total round trips per second.
func (e *echo) concurrent(ctx context.Context, n int, d time.Duration) (float64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	streams := make([]grpc.ClientStream, n)
	for i := range streams {
		s, err := e.open(ctx)
		if err != nil {
			return 0, err
		}
		streams[i] = s
	}
	var (
		wg    sync.WaitGroup
		total atomic.Int64
		errMu sync.Mutex
		first error
	)
	start := time.Now()
	end := start.Add(d)
	for _, s := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := &wrapperspb.BytesValue{Value: make([]byte, echoSize)}
			reply := new(wrapperspb.BytesValue)
			count := int64(0)
			for time.Now().Before(end) {
				err := s.SendMsg(msg)
				if err == nil {
					err = s.RecvMsg(reply)
				}
				if err != nil {
					errMu.Lock()
					first = errors.Join(first, err)
					errMu.Unlock()
					return
				}
				count++
			}
			total.Add(count)
			_ = s.CloseSend()
		}()
	}
	wg.Wait()
	if first != nil {
		return 0, fmt.Errorf("concurrent ping-pong: %w", first)
	}
	return float64(total.Load()) / time.Since(start).Seconds(), nil
}
