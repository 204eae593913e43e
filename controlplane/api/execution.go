package api

import (
	"context"

	"github.com/google/uuid"

	"github.com/tockhq/tock/controlplane/store"
	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

// executionService implements tock.v1.ExecutionService.
type executionService struct {
	tockv1.UnimplementedExecutionServiceServer
	s *Server
}

func validateExecutionID(id string) error {
	if id == "" {
		return invalid("id", "is required")
	}
	if _, err := uuid.Parse(id); err != nil {
		return invalid("id", "%q is not an execution id (a UUID)", id)
	}
	return nil
}

func (x *executionService) GetExecution(ctx context.Context, req *tockv1.GetExecutionRequest) (*tockv1.GetExecutionResponse, error) {
	if err := validateExecutionID(req.GetId()); err != nil {
		return nil, x.s.status("get execution", err, "")
	}
	e, err := x.s.store.GetExecution(ctx, req.GetId())
	if err != nil {
		return nil, x.s.status("get execution", err, "execution "+quote(req.GetId()))
	}
	return &tockv1.GetExecutionResponse{Execution: executionToProto(e)}, nil
}

func (x *executionService) ListExecutions(ctx context.Context, req *tockv1.ListExecutionsRequest) (*tockv1.ListExecutionsResponse, error) {
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, x.s.status("list executions", err, "")
	}
	before, err := decodeToken(req.GetPageToken())
	if err != nil {
		return nil, x.s.status("list executions", err, "")
	}
	params := store.ListExecutionsParams{Job: req.GetJob(), BeforeID: before, Limit: size}
	if req.GetJob() != "" {
		if err := validateName("job", req.GetJob()); err != nil {
			return nil, x.s.status("list executions", err, "")
		}
	}
	if req.GetState() != tockv1.ExecutionState_EXECUTION_STATE_UNSPECIFIED {
		st, ok := stateFromProto(req.GetState())
		if !ok {
			return nil, x.s.status("list executions", invalid("state", "unknown state %v", req.GetState()), "")
		}
		params.State = st
	}
	execs, err := x.s.store.ListExecutions(ctx, params)
	if err != nil {
		return nil, x.s.status("list executions", err, "")
	}
	resp := &tockv1.ListExecutionsResponse{Executions: make([]*tockv1.Execution, 0, len(execs))}
	for _, e := range execs {
		resp.Executions = append(resp.Executions, executionToProto(e))
	}
	if len(execs) == size {
		resp.NextPageToken = encodeToken(execs[len(execs)-1].ID)
	}
	return resp, nil
}

func (x *executionService) CancelExecution(ctx context.Context, req *tockv1.CancelExecutionRequest) (*tockv1.CancelExecutionResponse, error) {
	if err := validateExecutionID(req.GetId()); err != nil {
		return nil, x.s.status("cancel execution", err, "")
	}
	reason := req.GetReason()
	if reason == "" {
		reason = "cancelled through the API"
	}
	e, err := x.s.store.RequestCancel(ctx, req.GetId(), reason)
	if err != nil {
		return nil, x.s.status("cancel execution", err, "execution "+quote(req.GetId()))
	}
	x.s.dispatcher.Wake()
	return &tockv1.CancelExecutionResponse{Execution: executionToProto(e)}, nil
}
