// Command tock-agent is the Tock sidecar. See package agent and `tock-agent -help`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/tockhq/tock/agent"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := agent.NewMain().Run(ctx, os.Args[1:])
	stop()
	if code := agent.ExitCode(err); code != agent.ExitOK {
		fmt.Fprintln(os.Stderr, "tock-agent:", err)
		os.Exit(code)
	}
}
