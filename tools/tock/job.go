package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"

	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

func (a *app) jobCommand() *cobra.Command {
	return groupCommand("job", "Create, inspect, pause and trigger jobs",
		a.jobCreateCommand(),
		a.jobListCommand(),
		a.jobGetCommand(),
		a.jobDeleteCommand(),
		a.jobPauseCommand(),
		a.jobResumeCommand(),
		a.jobTriggerCommand(),
		a.jobFiresCommand(),
		a.jobNextCommand(),
		a.jobBackfillCommand(),
	)
}

// jobCreateFlags are the flags of "job create".
type jobCreateFlags struct {
	file        string
	handler     string
	service     string
	selector    []string
	schedule    scheduleFlags
	payload     payloadSource
	timeout     time.Duration
	maxAttempts int32
	priority    int32
	policy      policyFlags
}

// jobFieldFlags are the flags of "job create" that set job fields, which -f cannot go with.
var jobFieldFlags = append([]string{
	"handler", "service", "selector", "cron", "every", "at", "timezone",
	"payload", "payload-file", "timeout", "max-attempts", "priority",
}, policyFlagNames...)

func (a *app) jobCreateCommand() *cobra.Command {
	var f jobCreateFlags
	cmd := &cobra.Command{
		Use:   "create NAME --handler HANDLER [flags] | create -f FILE",
		Short: "Create a job",
		Long: "Create a job from flags, or from a file (-f) holding the Job as JSON, exactly as the\n" +
			"REST API takes it (POST /v1/jobs). Without --cron, --every or --at the job runs only\n" +
			"when triggered. On this command --timeout is the job's timeout, not the call's.",
		Example: "  tock job create nightly-report --handler report --cron '0 3 * * *' --timezone Europe/London\n" +
			"  tock job create ping --handler echo --every 30s --payload '{\"msg\":\"hi\"}'\n" +
			"  tock job create -f job.json",
		Args: positional("[NAME]"),
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.file, "file", "f", "", "read the job as JSON from `FILE` (\"-\" for stdin)")
	fl.StringVar(&f.handler, "handler", "", "the handler to run, `NAME` as the service's SDK registers it")
	fl.StringVar(&f.service, "service", "", "the agent `SERVICE` that runs the job (default any that serves the handler)")
	fl.StringArrayVar(&f.selector, "selector", nil, "labels an agent must carry, as `k=v,...` (repeatable)")
	fl.StringVar(&f.schedule.cron, "cron", "", "fire on a cron `EXPR` (5 fields, 6 with seconds, or a descriptor such as @hourly)")
	fl.StringVar(&f.schedule.every, "every", "", "fire every `DURATION`, such as 30s or 1h")
	fl.StringVar(&f.schedule.at, "at", "", "fire once at an RFC 3339 `TIME`")
	fl.StringVar(&f.schedule.timezone, "timezone", "", "the IANA time `ZONE` of --cron, such as Europe/London (default UTC)")
	fl.StringVar(&f.payload.inline, "payload", "", "the input of each execution, as `JSON`")
	fl.StringVar(&f.payload.file, "payload-file", "", "read the payload as JSON from `FILE` (\"-\" for stdin)")
	fl.DurationVar(&f.timeout, "timeout", 0, "the longest one attempt may run, such as 30s (default 1m on the server)")
	fl.Int32Var(&f.maxAttempts, "max-attempts", 0, "at most `N` attempts, the first included (default 3 on the server)")
	fl.Int32Var(&f.priority, "priority", 0, "`N` from -1000 to 1000; higher runs first when agents are saturated")
	f.policy.register(fl)

	cmd.RunE = a.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		req, err := f.request(args, cmd.Flags().Changed, a.main.Stdin)
		if err != nil {
			return err
		}
		c, err := a.connect()
		if err != nil {
			return err
		}
		resp, err := c.Jobs.CreateJob(ctx, req)
		if err != nil {
			return fmt.Errorf("create job %q: %w", req.GetJob().GetName(), err)
		}
		return a.print(resp.GetJob(), func(p *printer) error { return p.job(resp.GetJob()) })
	})
	return cmd
}

// request builds the CreateJobRequest that the arguments and flags describe. changed says
// whether a flag was given on the command line.
func (f *jobCreateFlags) request(args []string, changed func(string) bool, stdin io.Reader) (*tockv1.CreateJobRequest, error) {
	if f.file != "" {
		return f.requestFromFile(args, changed, stdin)
	}
	if len(args) == 0 {
		return nil, usageErrorf("give the job's NAME, or -f FILE")
	}
	if strings.TrimSpace(f.handler) == "" {
		return nil, usageErrorf("--handler is required")
	}
	selector, err := parseSelector(f.selector)
	if err != nil {
		return nil, err
	}
	schedule, err := f.schedule.schedule()
	if err != nil {
		return nil, err
	}
	payload, err := f.payload.value(stdin, changed("payload"))
	if err != nil {
		return nil, err
	}
	job := &tockv1.Job{
		Name:     args[0],
		Handler:  strings.TrimSpace(f.handler),
		Service:  strings.TrimSpace(f.service),
		Selector: selector,
		Schedule: schedule,
		Payload:  payload,
		Priority: f.priority,
	}
	if changed("timeout") {
		if f.timeout <= 0 {
			return nil, usageErrorf("invalid --timeout %s: must be positive", f.timeout)
		}
		job.Timeout = durationpb.New(f.timeout)
	}
	if changed("max-attempts") {
		if f.maxAttempts < 1 {
			return nil, usageErrorf("invalid --max-attempts %d: must be 1 or more", f.maxAttempts)
		}
		job.RetryPolicy = &tockv1.RetryPolicy{MaxAttempts: f.maxAttempts}
	}
	if err := f.policy.apply(job, changed); err != nil {
		return nil, err
	}
	return &tockv1.CreateJobRequest{Job: job}, nil
}

// requestFromFile builds the request from a job file. A NAME argument names a job whose file
// leaves the name out; it must agree with the file when both give one.
func (f *jobCreateFlags) requestFromFile(args []string, changed func(string) bool, stdin io.Reader) (*tockv1.CreateJobRequest, error) {
	for _, name := range jobFieldFlags {
		if changed(name) {
			return nil, usageErrorf("-f cannot be combined with --%s; put the field in the file", name)
		}
	}
	data, err := readInput(f.file, stdin)
	if err != nil {
		return nil, fmt.Errorf("read job file: %w", err)
	}
	job, err := parseJobJSON(data)
	if err != nil {
		return nil, fmt.Errorf("job file %s: %w", f.file, err)
	}
	if len(args) > 0 {
		switch job.GetName() {
		case "":
			job.Name = args[0]
		case args[0]:
		default:
			return nil, usageErrorf("NAME %q differs from the name %q in %s", args[0], job.GetName(), f.file)
		}
	}
	return &tockv1.CreateJobRequest{Job: job}, nil
}

// parseJobJSON reads a Job in the REST API's JSON form (lowerCamelCase or proto field
// names). Unknown fields are errors, so a misspelt field is not silently dropped.
func parseJobJSON(data []byte) (*tockv1.Job, error) {
	job := &tockv1.Job{}
	if err := protojson.Unmarshal(data, job); err != nil {
		return nil, fmt.Errorf("not a valid Job: %w", err)
	}
	return job, nil
}

func (a *app) jobListCommand() *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List jobs in name order",
		Args:  positional(),
	}
	cmd.Flags().IntVar(&limit, "limit", 0, "list at most `N` jobs (0 for all)")
	cmd.RunE = a.run(func(ctx context.Context, _ *cobra.Command, _ []string) error {
		if err := checkLimit(limit); err != nil {
			return err
		}
		c, err := a.connect()
		if err != nil {
			return err
		}
		jobs, next, err := collectPages(ctx, limit, func(ctx context.Context, size int32, token string) ([]*tockv1.Job, string, error) {
			resp, err := c.Jobs.ListJobs(ctx, &tockv1.ListJobsRequest{PageSize: size, PageToken: token})
			return resp.GetJobs(), resp.GetNextPageToken(), err
		})
		if err != nil {
			return fmt.Errorf("list jobs: %w", err)
		}
		return a.print(&tockv1.ListJobsResponse{Jobs: jobs, NextPageToken: next}, func(p *printer) error { return p.jobs(jobs) })
	})
	return cmd
}

func (a *app) jobGetCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "get NAME",
		Short: "Show a job",
		Args:  positional("NAME"),
	}
	cmd.RunE = a.run(func(ctx context.Context, _ *cobra.Command, args []string) error {
		c, err := a.connect()
		if err != nil {
			return err
		}
		resp, err := c.Jobs.GetJob(ctx, &tockv1.GetJobRequest{Name: args[0]})
		if err != nil {
			return fmt.Errorf("get job %q: %w", args[0], err)
		}
		return a.print(resp.GetJob(), func(p *printer) error { return p.job(resp.GetJob()) })
	})
	return cmd
}

func (a *app) jobDeleteCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a job, its fires and its executions (running ones are cancelled)",
		Args:  positional("NAME"),
	}
	cmd.RunE = a.run(func(ctx context.Context, _ *cobra.Command, args []string) error {
		c, err := a.connect()
		if err != nil {
			return err
		}
		resp, err := c.Jobs.DeleteJob(ctx, &tockv1.DeleteJobRequest{Name: args[0]})
		if err != nil {
			return fmt.Errorf("delete job %q: %w", args[0], err)
		}
		return a.print(resp, func(p *printer) error { return p.line("deleted job %s", args[0]) })
	})
	return cmd
}

func (a *app) jobPauseCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pause NAME",
		Short: "Stop a job from firing; its fires while paused are recorded as skipped",
		Args:  positional("NAME"),
	}
	cmd.RunE = a.run(func(ctx context.Context, _ *cobra.Command, args []string) error {
		c, err := a.connect()
		if err != nil {
			return err
		}
		resp, err := c.Jobs.PauseJob(ctx, &tockv1.PauseJobRequest{Name: args[0]})
		if err != nil {
			return fmt.Errorf("pause job %q: %w", args[0], err)
		}
		return a.print(resp.GetJob(), func(p *printer) error { return p.job(resp.GetJob()) })
	})
	return cmd
}

func (a *app) jobResumeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "resume NAME",
		Short: "Let a paused job fire again from its next fire time after now",
		Args:  positional("NAME"),
	}
	cmd.RunE = a.run(func(ctx context.Context, _ *cobra.Command, args []string) error {
		c, err := a.connect()
		if err != nil {
			return err
		}
		resp, err := c.Jobs.ResumeJob(ctx, &tockv1.ResumeJobRequest{Name: args[0]})
		if err != nil {
			return fmt.Errorf("resume job %q: %w", args[0], err)
		}
		return a.print(resp.GetJob(), func(p *printer) error { return p.job(resp.GetJob()) })
	})
	return cmd
}

// jobTriggerFlags are the flags of "job trigger".
type jobTriggerFlags struct {
	payload   payloadSource
	requestID string
}

// request builds the TriggerJobRequest for job name.
func (f *jobTriggerFlags) request(name string, changed func(string) bool, stdin io.Reader) (*tockv1.TriggerJobRequest, error) {
	payload, err := f.payload.value(stdin, changed("payload"))
	if err != nil {
		return nil, err
	}
	return &tockv1.TriggerJobRequest{Name: name, Payload: payload, RequestId: f.requestID}, nil
}

func (a *app) jobTriggerCommand() *cobra.Command {
	var f jobTriggerFlags
	cmd := &cobra.Command{
		Use:   "trigger NAME",
		Short: "Start an execution of a job now and print it",
		Args:  positional("NAME"),
	}
	cmd.Flags().StringVar(&f.payload.inline, "payload", "", "the input of this execution instead of the job's, as `JSON`")
	cmd.Flags().StringVar(&f.payload.file, "payload-file", "", "read the payload as JSON from `FILE` (\"-\" for stdin)")
	cmd.Flags().StringVar(&f.requestID, "request-id", "",
		"an idempotency key, unique per job (`ID`: letters, digits, . _ : -); running the command again with it creates nothing and prints the same execution")
	cmd.RunE = a.run(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		req, err := f.request(args[0], cmd.Flags().Changed, a.main.Stdin)
		if err != nil {
			return err
		}
		c, err := a.connect()
		if err != nil {
			return err
		}
		resp, err := c.Jobs.TriggerJob(ctx, req)
		if err != nil {
			return fmt.Errorf("trigger job %q: %w", args[0], err)
		}
		return a.print(resp.GetExecution(), func(p *printer) error { return p.execution(resp.GetExecution()) })
	})
	return cmd
}

func (a *app) jobFiresCommand() *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "fires NAME",
		Short: "List a job's recorded fires, newest first, with their outcomes",
		Args:  positional("NAME"),
	}
	cmd.Flags().IntVar(&limit, "limit", 100, "list at most `N` fires (0 for all)")
	cmd.RunE = a.run(func(ctx context.Context, _ *cobra.Command, args []string) error {
		if err := checkLimit(limit); err != nil {
			return err
		}
		c, err := a.connect()
		if err != nil {
			return err
		}
		fires, next, err := collectPages(ctx, limit, func(ctx context.Context, size int32, token string) ([]*tockv1.Fire, string, error) {
			resp, err := c.Jobs.ListFires(ctx, &tockv1.ListFiresRequest{Job: args[0], PageSize: size, PageToken: token})
			return resp.GetFires(), resp.GetNextPageToken(), err
		})
		if err != nil {
			return fmt.Errorf("list fires of job %q: %w", args[0], err)
		}
		return a.print(&tockv1.ListFiresResponse{Fires: fires, NextPageToken: next}, func(p *printer) error { return p.fires(fires) })
	})
	return cmd
}
