package main

import (
	"context"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/structpb"
)

// version is the build's version, set at link time:
//
//	go build -ldflags "-X main.version=v1.2.3" ./tools/tock
var version = "dev"

func (a *app) versionCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of tock",
		Args:  positional(),
	}
	cmd.RunE = a.run(func(context.Context, *cobra.Command, []string) error {
		resp, err := structpb.NewStruct(map[string]any{"version": version})
		if err != nil {
			return err
		}
		return a.print(resp, func(p *printer) error { return p.line("tock %s", version) })
	})
	return cmd
}
