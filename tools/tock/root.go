package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"
)

// Defaults of the global flags.
const (
	defaultServer      = "127.0.0.1:7400"
	defaultCallTimeout = 10 * time.Second
)

// Environment variables read when the matching flag is not given.
const (
	envServer = "TOCK_SERVER"
	envToken  = "TOCK_TOKEN"
)

// globalOptions are the flags every command takes.
type globalOptions struct {
	server  string
	output  outputFormat
	timeout time.Duration
	token   string
}

// app is the state of one Run: the global options, the client once dialled, and whether a
// command's own code started (which tells usage errors from failures).
type app struct {
	main   *Main
	opts   globalOptions
	client *Client
	ran    bool
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "tock",
		Short: "Manage Tock jobs, executions and agents",
		Long: "tock is the command-line client of the Tock control plane (tockd).\n\n" +
			"The server address comes from --server, else " + envServer + ", else " + defaultServer + ";\n" +
			"a bearer token from --token, else " + envToken + ".",
		SilenceErrors:     true,
		SilenceUsage:      true,
		PersistentPreRunE: a.resolveGlobals,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErrorf("%v", err) })

	a.opts.output = outputTable
	f := root.PersistentFlags()
	f.StringVar(&a.opts.server, "server", defaultServer, "control plane gRPC `ADDRESS` (env "+envServer+")")
	f.VarP(&a.opts.output, "output", "o", "output format: table or json")
	f.DurationVar(&a.opts.timeout, "timeout", defaultCallTimeout, "deadline of each call to the server")
	f.StringVar(&a.opts.token, "token", "", "bearer `TOKEN` sent to the server; prefer env "+envToken+", which the process list does not show")

	root.AddCommand(
		a.jobCommand(),
		a.execCommand(),
		a.agentCommand(),
		a.versionCommand(),
	)
	return root
}

// resolveGlobals fills the global options the flags left unset from the environment and
// checks them.
func (a *app) resolveGlobals(cmd *cobra.Command, _ []string) error {
	flags := cmd.Flags()
	if !flags.Changed("server") {
		if v := a.main.Getenv(envServer); v != "" {
			a.opts.server = v
		}
	}
	if !flags.Changed("token") {
		a.opts.token = a.main.Getenv(envToken)
	}
	if a.opts.server == "" {
		return usageErrorf("--server must not be empty")
	}
	// "job create" has a --timeout of its own (the job's); there the call keeps the default.
	if a.opts.timeout <= 0 {
		return usageErrorf("--timeout must be positive, got %s", a.opts.timeout)
	}
	return nil
}

// groupCommand returns a command that only holds subcommands: alone it prints its help,
// with an unknown subcommand it is a usage error.
func groupCommand(use, short string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:                        use,
		Short:                      short,
		SuggestionsMinimumDistance: 2,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				msg += fmt.Sprintf("; did you mean %q?", s[0])
			}
			return usageErrorf("%s", msg)
		},
	}
	cmd.AddCommand(subs...)
	return cmd
}

// run adapts a command body to cobra: it marks the point from which errors are failures
// rather than usage errors.
func (a *app) run(fn func(ctx context.Context, cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		a.ran = true
		return fn(cmd.Context(), cmd, args)
	}
}

// connect returns the client, dialling it on first use.
func (a *app) connect() (*Client, error) {
	if a.client != nil {
		return a.client, nil
	}
	c, err := a.main.Connect(ConnConfig{
		Address: a.opts.server,
		Token:   a.opts.token,
		Timeout: a.opts.timeout,
	})
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", a.opts.server, err)
	}
	a.client = c
	return c, nil
}

// close closes the client if one was dialled.
func (a *app) close() error {
	if a.client == nil {
		return nil
	}
	err := a.client.Close()
	a.client = nil
	if err != nil {
		return fmt.Errorf("close connection: %w", err)
	}
	return nil
}

// out returns the printer for the chosen output format.
func (a *app) out() *printer {
	return &printer{w: a.main.Stdout, format: a.opts.output, now: a.main.Now}
}

// print writes m as JSON, or through table in table format. As in the REST API, m is the
// resource itself for calls on one resource (a Job, an Execution) and the list message for
// lists ({"jobs": [...], "nextPageToken": "..."}).
func (a *app) print(m proto.Message, table func(p *printer) error) error {
	p := a.out()
	if p.isJSON() {
		return p.json(m)
	}
	return table(p)
}

// positional checks positional arguments against names: "NAME" is required, "[NAME]" optional.
// Required arguments must not be empty.
func positional(names ...string) cobra.PositionalArgs {
	required := 0
	for _, n := range names {
		if !strings.HasPrefix(n, "[") {
			required++
		}
	}
	return func(_ *cobra.Command, got []string) error {
		if len(got) < required {
			return usageErrorf("missing %s", strings.Join(names[len(got):required], " "))
		}
		if len(got) > len(names) {
			return usageErrorf("unexpected argument %q", got[len(names)])
		}
		for i, v := range got {
			if strings.TrimSpace(v) == "" {
				return usageErrorf("%s must not be empty", strings.Trim(names[i], "[]"))
			}
		}
		return nil
	}
}
