package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

func (a *app) agentCommand() *cobra.Command {
	return groupCommand("agent", "List the agents the control plane knows",
		a.agentListCommand(),
	)
}

func (a *app) agentListCommand() *cobra.Command {
	var service string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List agents with their load",
		Args:  positional(),
	}
	cmd.Flags().StringVar(&service, "service", "", "only agents of service `S`")
	cmd.RunE = a.run(func(ctx context.Context, _ *cobra.Command, _ []string) error {
		c, err := a.connect()
		if err != nil {
			return err
		}
		resp, err := c.Agents.ListAgents(ctx, &tockv1.ListAgentsRequest{Service: service})
		if err != nil {
			return fmt.Errorf("list agents: %w", err)
		}
		return a.print(resp, func(p *printer) error { return p.agents(resp.GetAgents()) })
	})
	return cmd
}
