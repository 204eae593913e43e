package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

// ConnConfig says how to reach the control plane.
type ConnConfig struct {
	// Address is the gRPC target, such as "127.0.0.1:7400" or "unix:///run/tockd.sock".
	Address string
	// Token, when set, is sent on every call as "authorization: Bearer <token>".
	Token string
	// Timeout is the deadline of each call; zero means none beyond the caller's context.
	Timeout time.Duration
	// TransportCredentials secure the connection; nil means plaintext.
	TransportCredentials credentials.TransportCredentials
}

// Client holds the clients of the tock.v1 services over one connection.
type Client struct {
	Jobs       tockv1.JobServiceClient
	Executions tockv1.ExecutionServiceClient
	Agents     tockv1.AgentServiceClient

	// close releases the connection; nil when there is nothing to release.
	close func() error
}

// Close releases the client's connection.
func (c *Client) Close() error {
	if c.close == nil {
		return nil
	}
	return c.close()
}

// Dial returns a client of the control plane at cfg.Address. The connection is made on the
// first call, so an unreachable server is reported by that call as an *UnreachableError.
func Dial(cfg ConnConfig) (*Client, error) {
	transport := cfg.TransportCredentials
	if transport == nil {
		transport = insecure.NewCredentials()
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(transport),
		grpc.WithChainUnaryInterceptor(
			unreachableInterceptor(cfg.Address),
			timeoutInterceptor(cfg.Timeout),
		),
	}
	if cfg.Token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearerToken{
			token:      cfg.Token,
			requireTLS: cfg.TransportCredentials != nil,
		}))
	}
	conn, err := grpc.NewClient(cfg.Address, opts...)
	if err != nil {
		return nil, fmt.Errorf("dial %q: %w", cfg.Address, err)
	}
	return &Client{
		Jobs:       tockv1.NewJobServiceClient(conn),
		Executions: tockv1.NewExecutionServiceClient(conn),
		Agents:     tockv1.NewAgentServiceClient(conn),
		close:      conn.Close,
	}, nil
}

// bearerToken sends a bearer token with every call.
type bearerToken struct {
	token string
	// requireTLS refuses to send the token over a plaintext connection. It is false only
	// when the connection is plaintext by configuration.
	requireTLS bool
}

func (b bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

func (b bearerToken) RequireTransportSecurity() bool { return b.requireTLS }

// timeoutInterceptor gives each call its own deadline of d.
func timeoutInterceptor(d time.Duration) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if d > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

// unreachableInterceptor turns a call that failed because no connection to address could
// be made into an *UnreachableError. A failure while the connection is up is the server's
// answer and passes through unchanged.
func unreachableInterceptor(address string) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		if err == nil || ctx.Err() != nil {
			return err
		}
		switch status.Code(err) {
		case codes.Unavailable, codes.DeadlineExceeded:
			if cc.GetState() != connectivity.Ready {
				return &UnreachableError{Address: address, Err: err}
			}
		}
		return err
	}
}

// UnreachableError reports that no connection could be made to the control plane.
type UnreachableError struct {
	// Address is the address that was tried.
	Address string
	// Err is the error of the failed call.
	Err error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach the control plane at %s: %s", e.Address, statusMessage(e.Err))
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// statusMessage is the message of err's gRPC status, or err's text when it has none.
func statusMessage(err error) string {
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) && se.GRPCStatus() != nil {
		return se.GRPCStatus().Message()
	}
	return err.Error()
}
