package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

// previewHeader heads the table of "job next".
var previewHeader = []string{"UTC", "LOCAL"}

func (a *app) jobNextCommand() *cobra.Command {
	var count int32
	cmd := &cobra.Command{
		Use:   "next NAME",
		Short: "Show a job's next nominal fire times, in UTC and in its time zone",
		Long: "Show a job's next nominal fire times, as the scheduler will reach them, in UTC and in\n" +
			"the schedule's time zone, daylight saving rules applied.",
		Example: "  tock job next nightly-report -n 5",
		Args:    positional("NAME"),
	}
	cmd.Flags().Int32VarP(&count, "count", "n", 10, "show `N` fire times, from 1 to 1000")
	cmd.RunE = a.run(func(ctx context.Context, _ *cobra.Command, args []string) error {
		if count < 1 || count > 1000 {
			return usageErrorf("invalid -n %d: want 1 to 1000", count)
		}
		c, err := a.connect()
		if err != nil {
			return err
		}
		resp, err := c.Jobs.PreviewJob(ctx, &tockv1.PreviewJobRequest{Name: args[0], Count: count})
		if err != nil {
			return fmt.Errorf("preview job %q: %w", args[0], err)
		}
		return a.print(resp, func(p *printer) error { return p.fireTimes(resp.GetFireTimes()) })
	})
	return cmd
}

// fireTimes writes a table of nominal fire times.
func (p *printer) fireTimes(ts []*tockv1.FireTime) error {
	rows := make([][]string, 0, len(ts))
	for _, t := range ts {
		rows = append(rows, []string{formatTime(t.GetTime()), orNone(t.GetLocalTime())})
	}
	return p.table(previewHeader, rows)
}

// jobBackfillFlags are the flags of "job backfill".
type jobBackfillFlags struct {
	start, end string
}

// request builds the BackfillJobRequest for job name.
func (f jobBackfillFlags) request(name string) (*tockv1.BackfillJobRequest, error) {
	start, err := parseFlagTime("--start", f.start)
	if err != nil {
		return nil, err
	}
	end, err := parseFlagTime("--end", f.end)
	if err != nil {
		return nil, err
	}
	if !start.Before(end) {
		return nil, usageErrorf("--end (%s) must be after --start (%s)", f.end, f.start)
	}
	return &tockv1.BackfillJobRequest{Name: name, Start: timestamppb.New(start), End: timestamppb.New(end)}, nil
}

func parseFlagTime(flag, s string) (time.Time, error) {
	if strings.TrimSpace(s) == "" {
		return time.Time{}, usageErrorf("%s is required: an RFC 3339 time such as 2026-01-02T15:04:05Z", flag)
	}
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, usageErrorf("invalid %s %q: want an RFC 3339 time such as 2026-01-02T15:04:05Z", flag, s)
	}
	return t, nil
}

func (a *app) jobBackfillCommand() *cobra.Command {
	var f jobBackfillFlags
	cmd := &cobra.Command{
		Use:   "backfill NAME --start TIME --end TIME",
		Short: "Fire a job for every nominal time of its schedule in [start, end)",
		Long: "Fire a job for every nominal time of its schedule from --start (inclusive) to --end\n" +
			"(exclusive), as the scheduler would have, honouring its overlap policy. Times already\n" +
			"fired are left as they are. Prints the fires recorded.",
		Example: "  tock job backfill nightly-report --start 2026-03-01T00:00:00Z --end 2026-03-08T00:00:00Z",
		Args:    positional("NAME"),
	}
	cmd.Flags().StringVar(&f.start, "start", "", "the range's start, an RFC 3339 `TIME` (inclusive)")
	cmd.Flags().StringVar(&f.end, "end", "", "the range's end, an RFC 3339 `TIME` (exclusive, not in the future)")
	cmd.RunE = a.run(func(ctx context.Context, _ *cobra.Command, args []string) error {
		req, err := f.request(args[0])
		if err != nil {
			return err
		}
		c, err := a.connect()
		if err != nil {
			return err
		}
		resp, err := c.Jobs.BackfillJob(ctx, req)
		if err != nil {
			return fmt.Errorf("backfill job %q: %w", args[0], err)
		}
		return a.print(resp, func(p *printer) error { return p.fires(resp.GetFires()) })
	})
	return cmd
}

// policyFields describes a job's scheduling policies that differ from the defaults.
func policyFields(j *tockv1.Job) []field {
	var fs []field
	if s := j.GetSchedule(); s != nil {
		if s.GetJitter() != nil {
			fs = append(fs, field{"Jitter", formatDuration(s.GetJitter())})
		}
		if s.GetSpringForward() == tockv1.SpringForward_SPRING_FORWARD_SKIP || s.GetFallBack() == tockv1.FallBack_FALL_BACK_RUN_BOTH {
			fs = append(fs, field{"DST", "spring forward: " + enumName(s.GetSpringForward().String(), "SPRING_FORWARD_") +
				", fall back: " + enumName(s.GetFallBack().String(), "FALL_BACK_")})
		}
	}
	if m := j.GetMisfirePolicy(); m.GetAction() == tockv1.MisfireAction_MISFIRE_ACTION_SKIP || m.GetAction() == tockv1.MisfireAction_MISFIRE_ACTION_CATCH_UP {
		desc := enumName(m.GetAction().String(), "MISFIRE_ACTION_")
		if m.GetAction() == tockv1.MisfireAction_MISFIRE_ACTION_CATCH_UP {
			desc += fmt.Sprintf(" (at most %d within %s)", m.GetMaxCatchUp(), formatDuration(m.GetWindow()))
		}
		fs = append(fs, field{"Misfire", desc})
	}
	if o := j.GetOverlapPolicy(); o.GetAction() > tockv1.OverlapAction_OVERLAP_ACTION_ALLOW {
		desc := enumName(o.GetAction().String(), "OVERLAP_ACTION_")
		if o.GetAction() == tockv1.OverlapAction_OVERLAP_ACTION_ALLOW_N {
			desc = fmt.Sprintf("ALLOW_N (at most %d at once)", o.GetMaxConcurrent())
		}
		fs = append(fs, field{"Overlap", desc})
	}
	if d := j.GetScheduleToStartTimeout(); d != nil {
		fs = append(fs, field{"Start within", formatDuration(d)})
	}
	if d := j.GetScheduleToCloseTimeout(); d != nil {
		fs = append(fs, field{"Done within", formatDuration(d)})
	}
	if deps := j.GetDependsOn(); len(deps) > 0 {
		fs = append(fs, field{"Depends on", strings.Join(deps, ", ")})
	}
	return fs
}
