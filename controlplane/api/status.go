package api

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tockhq/tock/controlplane/store"
)

// toStatus maps an error to a gRPC status. Input errors keep their message; store errors
// become their code with a message that names the object; anything else is logged and
// reported as Internal without its text.
func toStatus(log *slog.Logger, op string, err error, object string) error {
	var (
		fe  *fieldError
		dep *store.DependencyError
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &fe):
		return status.Error(codes.InvalidArgument, fe.Error())
	case errors.As(err, &dep):
		return status.Error(codes.InvalidArgument, "job.depends_on: "+dep.Error())
	case errors.Is(err, store.ErrNotFound):
		return status.Errorf(codes.NotFound, "%s not found", object)
	case errors.Is(err, store.ErrAlreadyExists):
		return status.Errorf(codes.AlreadyExists, "%s already exists", object)
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "request cancelled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "request deadline exceeded")
	}
	if s, ok := status.FromError(err); ok && s.Code() != codes.Unknown {
		return err
	}
	log.Error(op, "err", err)
	return status.Errorf(codes.Internal, "%s failed; see the control plane's logs", op)
}
