package scheduler_test

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tockhq/tock/controlplane/scheduler"
	"github.com/tockhq/tock/controlplane/store"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of the scenarios in testdata/")

// TestScenarios runs the data-driven scenarios in testdata/*.txt. Each file is a script of
// directives, each followed by "----" and the output it must give, up to a blank line:
//
//	job cron="* * * * * *" misfire=catch_up max-catch-up=3
//	----
//	ok
//
//	plan now=+10s live=1
//	----
//	+0s missed
//	+9s dispatched not-before=+9s
//	next +11s
//
// Times are offsets from the scenario's base, 2030-01-02T03:04:05Z, where the job's next fire
// time starts; "now" is the database clock the plan is made at. The directives:
//
//   - job: sets the job (cron, every, misfire, grace, window, max-catch-up, overlap,
//     max-concurrent, jitter, paused, resumed, next, schedule-to-close);
//   - plan: plans the job at now with live executions and a horizon (default 0), prints each
//     fire and the next fire time, and moves the job's next fire time as the store would;
//   - backfill: plans a backfill of [start, end) with live executions;
//   - dependent: plans the job's fire for a nominal time once its upstream jobs succeeded.
func TestScenarios(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			t.Parallel()
			runScenario(t, file)
		})
	}
}

var scenarioBase = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// directive is one directive of a scenario file with its expected output.
type directive struct {
	line     int
	comments []string
	cmd      string
	args     map[string]string
	expected string
}

func runScenario(t *testing.T, file string) {
	directives, err := readScenario(file)
	require.NoError(t, err)
	s := &scenario{t: t}
	var out strings.Builder
	for _, d := range directives {
		got := s.run(d)
		if *rewrite {
			fmt.Fprintf(&out, "%s\n----\n%s\n\n", d.source(), got)
			continue
		}
		require.Equal(t, d.expected, got, "%s:%d: %s", file, d.line, d.cmd)
	}
	if *rewrite {
		require.NoError(t, os.WriteFile(file, []byte(strings.TrimSuffix(out.String(), "\n")+"\n"), 0o644))
	}
}

// source is the directive as written, with its arguments in a stable order.
func (d directive) source() string {
	var b strings.Builder
	for _, c := range d.comments {
		b.WriteString(c + "\n")
	}
	return b.String() + d.cmd + d.args["\x00raw"]
}

func readScenario(file string) ([]directive, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var (
		out      []directive
		comments []string
		cur      *directive
		in       bool // reading expected output
		want     []string
		n        int
	)
	flush := func() {
		if cur != nil {
			cur.expected = strings.Join(want, "\n")
			out = append(out, *cur)
		}
		cur, in, want = nil, false, nil
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case in && line == "":
			flush()
		case in:
			want = append(want, line)
		case line == "----":
			if cur == nil {
				return nil, fmt.Errorf("%s:%d: ---- without a directive", file, n)
			}
			in = true
		case line == "" && cur == nil:
		case strings.HasPrefix(line, "#") && cur == nil:
			// Kept with the directive that follows, for -rewrite.
			comments = append(comments, line)
		case cur != nil:
			return nil, fmt.Errorf("%s:%d: directive %q has no ----", file, n, cur.cmd)
		default:
			cmd, rest, _ := strings.Cut(line, " ")
			args, err := parseArgs(rest)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", file, n, err)
			}
			if rest != "" {
				args["\x00raw"] = " " + rest
			}
			cur = &directive{line: n, comments: comments, cmd: cmd, args: args}
			comments = nil
		}
	}
	flush()
	return out, sc.Err()
}

// parseArgs reads key=value pairs; a value may be double-quoted.
func parseArgs(s string) (map[string]string, error) {
	args := map[string]string{}
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		key, rest, ok := strings.Cut(s, "=")
		if !ok {
			return nil, fmt.Errorf("argument %q is not key=value", s)
		}
		if strings.HasPrefix(rest, `"`) {
			end := strings.Index(rest[1:], `"`)
			if end < 0 {
				return nil, fmt.Errorf("unterminated quote in %q", s)
			}
			args[key], s = rest[1:end+1], rest[end+2:]
			continue
		}
		val, tail, _ := strings.Cut(rest, " ")
		args[key], s = val, tail
	}
	return args, nil
}

// scenario is the state a scenario's directives share.
type scenario struct {
	t   *testing.T
	job store.Job
}

func (s *scenario) run(d directive) string {
	switch d.cmd {
	case "job":
		s.job = s.jobOf(d.args)
		return "ok"
	case "plan":
		now := s.at(d.args["now"])
		horizon := s.duration(d.args["horizon"])
		plan := scheduler.Plan(scheduler.PlanConfig{MaxFiresPerPlan: s.int(d.args["max-fires"])},
			store.DueJob{Job: s.job, Live: s.int(d.args["live"])}, now, horizon)
		if len(plan.Fires) > 0 {
			s.job.NextFireAt = plan.NextFireAt
		}
		return s.format(plan, true)
	case "backfill":
		plan := scheduler.PlanBackfill(store.DueJob{Job: s.job, Live: s.int(d.args["live"])}, s.at(d.args["start"]), s.at(d.args["end"]), s.at(d.args["now"]))
		return s.format(plan, false)
	case "dependent":
		fire := store.PlanDependent(store.DueJob{Job: s.job, Live: s.int(d.args["live"])}, s.at(d.args["nominal"]),
			[]store.UpstreamResult{{Job: "up", ExecutionID: "u-1"}}, s.at(d.args["now"]))
		return s.format(store.FirePlan{Fires: []store.PlannedFire{fire}}, false)
	}
	s.t.Fatalf("line %d: unknown directive %q", d.line, d.cmd)
	return ""
}

func (s *scenario) jobOf(args map[string]string) store.Job {
	job := store.Job{Name: "tick", Handler: "echo", CreatedAt: scenarioBase.Add(-time.Hour), NextFireAt: scenarioBase}
	sched := &store.Schedule{Cron: args["cron"], Interval: s.duration(args["every"]), Jitter: s.duration(args["jitter"])}
	if sched.Cron != "" || sched.Interval != 0 {
		job.Schedule = sched
	}
	job.Misfire = store.MisfirePolicy{
		Action:     store.MisfireAction(args["misfire"]),
		MaxCatchUp: s.int(args["max-catch-up"]),
		Grace:      s.duration(args["grace"]),
		Window:     s.duration(args["window"]),
	}
	job.Overlap = store.OverlapPolicy{Action: store.OverlapAction(args["overlap"]), MaxConcurrent: s.int(args["max-concurrent"])}
	job.Paused = args["paused"] == "true"
	if v, ok := args["resumed"]; ok {
		job.ResumedAt = s.at(v)
	}
	if v, ok := args["next"]; ok {
		job.NextFireAt = s.at(v)
	}
	job.ScheduleToCloseTimeout = s.duration(args["schedule-to-close"])
	return job
}

// format prints a plan: one line per fire, then the next fire time when withNext.
func (s *scenario) format(plan store.FirePlan, withNext bool) string {
	var lines []string
	for _, f := range plan.Fires {
		line := offset(f.NominalTime) + " " + string(f.Outcome)
		if e := f.Execution; e != nil {
			line += " " + string(e.Trigger)
			if !e.NotBefore.Equal(f.NominalTime) {
				line += " not-before=" + offset(e.NotBefore)
			}
			if !e.CloseDeadline.IsZero() {
				line += " close-by=" + offset(e.CloseDeadline)
			}
			if len(e.Upstream) > 0 {
				line += " upstream=" + strings.Join(e.UpstreamIDs(), ",")
			}
		}
		if f.Replace {
			line += " replace"
		}
		lines = append(lines, line)
	}
	if len(plan.Fires) == 0 {
		lines = append(lines, "no fires")
	}
	if withNext {
		next := "none"
		if !plan.NextFireAt.IsZero() {
			next = offset(plan.NextFireAt)
		}
		lines = append(lines, "next "+next)
	}
	return strings.Join(lines, "\n")
}

// offset prints t as an offset from the base.
func offset(t time.Time) string {
	d := t.Sub(scenarioBase)
	if d < 0 {
		return d.String()
	}
	return "+" + d.String()
}

// at reads "+10s", "-1m" (offsets from the base) or an RFC 3339 time; empty is the base.
func (s *scenario) at(v string) time.Time {
	if v == "" {
		return scenarioBase
	}
	if strings.HasPrefix(v, "+") || strings.HasPrefix(v, "-") {
		d, err := time.ParseDuration(v)
		require.NoError(s.t, err)
		return scenarioBase.Add(d)
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	require.NoError(s.t, err)
	return t
}

func (s *scenario) duration(v string) time.Duration {
	if v == "" {
		return 0
	}
	d, err := time.ParseDuration(v)
	require.NoError(s.t, err)
	return d
}

func (s *scenario) int(v string) int {
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	require.NoError(s.t, err)
	return n
}
