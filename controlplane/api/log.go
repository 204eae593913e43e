package api

import (
	"context"

	"github.com/tockhq/tock/controlplane/store"
	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

// ListExecutionLogs returns a page of the log lines an execution's handler wrote, oldest
// first. The page token is the last line's id.
func (x *executionService) ListExecutionLogs(ctx context.Context, req *tockv1.ListExecutionLogsRequest) (*tockv1.ListExecutionLogsResponse, error) {
	if err := validateExecutionID(req.GetId()); err != nil {
		return nil, x.s.status("list execution logs", err, "")
	}
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, x.s.status("list execution logs", err, "")
	}
	after, err := decodeToken(req.GetPageToken())
	if err != nil {
		return nil, x.s.status("list execution logs", err, "")
	}
	lines, err := x.s.store.ListLogs(ctx, store.ListLogsParams{ExecutionID: req.GetId(), After: after, Limit: size})
	if err != nil {
		return nil, x.s.status("list execution logs", err, "execution "+quote(req.GetId()))
	}
	resp := &tockv1.ListExecutionLogsResponse{Logs: make([]*tockv1.ExecutionLog, 0, len(lines))}
	for _, l := range lines {
		resp.Logs = append(resp.Logs, logToProto(l))
	}
	if len(lines) == size {
		resp.NextPageToken = encodeToken(lines[len(lines)-1].LineID)
	}
	return resp, nil
}

func logToProto(l store.LogLine) *tockv1.ExecutionLog {
	return &tockv1.ExecutionLog{
		Time:       timeToProto(l.Time),
		Level:      l.Level,
		Message:    l.Message,
		LeaseEpoch: l.Epoch,
	}
}

func progressToProto(p *store.Progress) *tockv1.ExecutionProgress {
	if p == nil {
		return nil
	}
	return &tockv1.ExecutionProgress{
		Fraction:   p.Fraction,
		Message:    p.Message,
		UpdateTime: timeToProto(p.UpdatedAt),
	}
}
