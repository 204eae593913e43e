package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

func (a *app) execLogsCommand() *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:     "logs ID",
		Short:   "Show the log lines an execution's handler wrote, oldest first",
		Example: "  tock exec logs 0190f3a1-7c2b-7d4e-8f00-0000000000aa --limit 50",
		Args:    positional("ID"),
	}
	cmd.Flags().IntVar(&limit, "limit", 0, "show at most the first `N` lines (0 for all)")
	cmd.RunE = a.run(func(ctx context.Context, _ *cobra.Command, args []string) error {
		if err := checkLimit(limit); err != nil {
			return err
		}
		c, err := a.connect()
		if err != nil {
			return err
		}
		logs, next, err := collectPages(ctx, limit, func(ctx context.Context, size int32, token string) ([]*tockv1.ExecutionLog, string, error) {
			resp, err := c.Executions.ListExecutionLogs(ctx, &tockv1.ListExecutionLogsRequest{
				Id:        args[0],
				PageSize:  size,
				PageToken: token,
			})
			return resp.GetLogs(), resp.GetNextPageToken(), err
		})
		if err != nil {
			return fmt.Errorf("list logs of execution %s: %w", args[0], err)
		}
		resp := &tockv1.ListExecutionLogsResponse{Logs: logs, NextPageToken: next}
		return a.print(resp, func(p *printer) error { return p.logs(logs) })
	})
	return cmd
}

// logs writes log lines one per line: time (to the millisecond), level, text.
func (p *printer) logs(ls []*tockv1.ExecutionLog) error {
	for _, l := range ls {
		at := none
		if l.GetTime() != nil {
			at = l.GetTime().AsTime().UTC().Format("2006-01-02T15:04:05.000Z07:00")
		}
		level := l.GetLevel()
		if level == "" {
			level = none
		}
		if err := p.line("%s %-5s %s", at, level, strings.TrimRight(l.GetMessage(), "\n")); err != nil {
			return err
		}
	}
	return nil
}

// formatProgress shows progress as "42% message (updated …)".
func formatProgress(pr *tockv1.ExecutionProgress) string {
	if pr == nil {
		return none
	}
	s := strconv.FormatFloat(pr.GetFraction()*100, 'f', 0, 64) + "%"
	if pr.GetMessage() != "" {
		s += " " + pr.GetMessage()
	}
	if pr.GetUpdateTime() != nil {
		s += " (at " + pr.GetUpdateTime().AsTime().UTC().Format(time.RFC3339) + ")"
	}
	return s
}
