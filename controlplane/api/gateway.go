package api

import (
	"context"
	"fmt"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"

	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

// NewGateway returns the REST/JSON handler for tock.v1 (paths under /v1), which calls the
// gRPC services through conn. JSON field names are lowerCamelCase and fields with default
// values are included, so that clients can rely on every field being present.
func NewGateway(ctx context.Context, conn *grpc.ClientConn) (http.Handler, error) {
	mux := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{EmitDefaultValues: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}),
	)
	for name, register := range map[string]func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error{
		"jobs":       tockv1.RegisterJobServiceHandler,
		"executions": tockv1.RegisterExecutionServiceHandler,
		"agents":     tockv1.RegisterAgentServiceHandler,
		"schedules":  tockv1.RegisterScheduleServiceHandler,
	} {
		if err := register(ctx, mux, conn); err != nil {
			return nil, fmt.Errorf("register %s gateway: %w", name, err)
		}
	}
	return mux, nil
}
