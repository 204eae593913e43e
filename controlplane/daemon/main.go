package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/tockhq/tock/controlplane/discovery"
	"github.com/tockhq/tock/controlplane/telemetry"
)

// Main runs tockd with args (without the program name) and returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := newRootCommand()
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "tockd:", err)
		var ue usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	return 0
}

// usageError is a mistake in the command line.
type usageError struct{ error }

func newRootCommand() *cobra.Command {
	cfg := &Config{}
	root := &cobra.Command{
		Use:   "tockd",
		Short: "Tock's control plane",
		Long: "tockd is Tock's control plane. Run it with no command for a production replica, or\n" +
			"`tockd dev` for a development server with an agent in the same process." + telemetry.EnvHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return Run(cmd.Context(), *cfg)
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	flags := root.PersistentFlags()
	flags.StringVar(&cfg.DataDir, "data-dir", DefaultDataDir, "directory for the embedded SQLite database")
	flags.StringVar(&cfg.Store, "store", "", "database: sqlite:///path/to/tock.db, postgres://… or cockroach://… (default: SQLite in --data-dir)")
	flags.StringVar(&cfg.GRPCAddr, "grpc-addr", DefaultGRPCAddr, "gRPC API listen address")
	flags.StringVar(&cfg.HTTPAddr, "http-addr", DefaultHTTPAddr, "HTTP listen address for REST (/v1), /metrics and /healthz")
	flags.StringVar(&cfg.ReplicaID, "replica-id", "", "this replica's id (default: host name and process id)")
	flags.StringVar(&cfg.AdvertiseAddr, "advertise-addr", "", "gRPC address other replicas and agents reach this replica at (default: --grpc-addr)")
	flags.DurationVar(&cfg.ReplicaTTL, "replica-ttl", DefaultReplicaTTL, "how long this replica's registration lasts unless refreshed; a dead replica's agents move after about this long (1s to 10m)")
	flags.DurationVar(&cfg.Lease, "lease", DefaultLease, "how long an assignment lasts without a heartbeat from its agent before it is retried; keep it a few seconds above --replica-ttl")
	flags.DurationVar(&cfg.Lookahead, "lookahead", DefaultLookahead, "how long before their time executions may be assigned (with their start time) so that work due at one instant starts on time; 0 assigns due work only (0 to 10s)")
	flags.DurationVar(&cfg.Retention, "retention", DefaultRetention, "how long finished executions and fires are kept; 0 keeps them forever")
	flags.StringVar(&cfg.LogFormat, "log-format", "", "log format: text or json (default: text for dev, json otherwise)")
	flags.StringVar(&cfg.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	flags.BoolVar(&cfg.Profiling, "pprof", false, "serve Go's runtime profiles under /debug/pprof/ on --http-addr (keep that address private)")
	flags.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 0, "how long a graceful stop may take (default 30s)")
	flags.StringVar(&cfg.Discovery, "discovery", discoveryBuiltin, "how agents and replicas are found: builtin (the registry in the database) or consul (configured by CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN and the other CONSUL_* variables)")
	flags.StringVar(&cfg.ConsulService, "consul-service", "tock-agent", "with --discovery consul: the Consul service the agents register under (tock-agent's --consul-service)")
	flags.StringVar(&cfg.ConsulTag, "consul-tag", "", "with --discovery consul: dispatch only to agents whose Consul service carries this tag (each agent is tagged with its --service)")
	flags.StringVar(&cfg.ConsulReplicaService, "consul-replica-service", discovery.DefaultConsulReplicaService, "with --discovery consul: the Consul service the replicas register under")

	dev := &cobra.Command{
		Use:   "dev",
		Short: "Run a development server: SQLite, built-in registry and one agent in the process",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Dev = true
			return Run(cmd.Context(), *cfg)
		},
	}
	dev.Flags().StringVar(&cfg.AppAddr, "app-addr", DefaultAppAddr, "address of the local service the development agent invokes")
	dev.Flags().StringVar(&cfg.AgentService, "agent-service", "default", "service name of the development agent")
	dev.Flags().IntVar(&cfg.AgentCapacity, "agent-capacity", 16, "most executions the development agent runs at once")

	migrate := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the database migrations and exit",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			target, err := parseStore(cfg.Store, cfg.DataDir)
			if err != nil {
				return usageError{err}
			}
			if err := migrateStore(cmd.Context(), target); err != nil {
				return fmt.Errorf("migrate %s: %w", target, err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "migrations applied to", target)
			return nil
		},
	}
	root.AddCommand(dev, migrate)
	return root
}
