package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

func (a *app) execCommand() *cobra.Command {
	return groupCommand("exec", "List, inspect and cancel executions",
		a.execListCommand(),
		a.execGetCommand(),
		a.execCancelCommand(),
		a.execLogsCommand(),
	)
}

// execListFlags are the flags of "exec list".
type execListFlags struct {
	job   string
	state string
	limit int
}

// request builds the first ListExecutionsRequest; pagination fills in the page fields.
func (f *execListFlags) request() (*tockv1.ListExecutionsRequest, error) {
	if err := checkLimit(f.limit); err != nil {
		return nil, err
	}
	req := &tockv1.ListExecutionsRequest{Job: f.job}
	if f.state != "" {
		state, err := parseExecutionState(f.state)
		if err != nil {
			return nil, err
		}
		req.State = state
	}
	return req, nil
}

func (a *app) execListCommand() *cobra.Command {
	var f execListFlags
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List executions, newest first",
		Example: "  tock exec list --job nightly-report --state failed --limit 20",
		Args:    positional(),
	}
	cmd.Flags().StringVar(&f.job, "job", "", "only executions of job `NAME`")
	cmd.Flags().StringVar(&f.state, "state", "", "only executions in `STATE`: "+strings.Join(stateNames, ", "))
	cmd.Flags().IntVar(&f.limit, "limit", 100, "list at most `N` executions (0 for all)")
	cmd.RunE = a.run(func(ctx context.Context, _ *cobra.Command, _ []string) error {
		base, err := f.request()
		if err != nil {
			return err
		}
		c, err := a.connect()
		if err != nil {
			return err
		}
		execs, next, err := collectPages(ctx, f.limit, func(ctx context.Context, size int32, token string) ([]*tockv1.Execution, string, error) {
			resp, err := c.Executions.ListExecutions(ctx, &tockv1.ListExecutionsRequest{
				Job:       base.GetJob(),
				State:     base.GetState(),
				PageSize:  size,
				PageToken: token,
			})
			return resp.GetExecutions(), resp.GetNextPageToken(), err
		})
		if err != nil {
			return fmt.Errorf("list executions: %w", err)
		}
		resp := &tockv1.ListExecutionsResponse{Executions: execs, NextPageToken: next}
		return a.print(resp, func(p *printer) error { return p.executions(execs) })
	})
	return cmd
}

func (a *app) execGetCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "get ID",
		Short: "Show an execution",
		Args:  positional("ID"),
	}
	cmd.RunE = a.run(func(ctx context.Context, _ *cobra.Command, args []string) error {
		c, err := a.connect()
		if err != nil {
			return err
		}
		resp, err := c.Executions.GetExecution(ctx, &tockv1.GetExecutionRequest{Id: args[0]})
		if err != nil {
			return fmt.Errorf("get execution %s: %w", args[0], err)
		}
		return a.print(resp.GetExecution(), func(p *printer) error { return p.execution(resp.GetExecution()) })
	})
	return cmd
}

func (a *app) execCancelCommand() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a pending or running execution; it is not retried",
		Args:  positional("ID"),
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, recorded with the execution, as `TEXT`")
	cmd.RunE = a.run(func(ctx context.Context, _ *cobra.Command, args []string) error {
		c, err := a.connect()
		if err != nil {
			return err
		}
		resp, err := c.Executions.CancelExecution(ctx, &tockv1.CancelExecutionRequest{Id: args[0], Reason: reason})
		if err != nil {
			return fmt.Errorf("cancel execution %s: %w", args[0], err)
		}
		return a.print(resp.GetExecution(), func(p *printer) error { return p.execution(resp.GetExecution()) })
	})
	return cmd
}
