package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

// maxInputSize bounds what tock reads from a file or stdin (a job file, a payload).
const maxInputSize = 16 << 20

// parsePayload parses JSON text given to flag into a protobuf Value, as the REST API reads a
// payload. Any JSON value will do: an object, an array, a string, a number, true, false or
// null.
func parsePayload(flag string, data []byte) (*structpb.Value, error) {
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, usageErrorf("invalid %s: empty; give a JSON value such as '{}' or 'null'", flag)
	}
	var probe any
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, usageErrorf("invalid %s: not valid JSON: %v", flag, err)
	}
	v := &structpb.Value{}
	if err := protojson.Unmarshal(data, v); err != nil {
		return nil, usageErrorf("invalid %s: %v", flag, err)
	}
	return v, nil
}

// payloadSource is a payload given either inline or as a file ("-" for stdin).
type payloadSource struct {
	inline string
	file   string
}

// value reads and parses the payload; nil when neither form was given.
func (s payloadSource) value(stdin io.Reader, inlineSet bool) (*structpb.Value, error) {
	switch {
	case inlineSet && s.file != "":
		return nil, usageErrorf("give --payload or --payload-file, not both")
	case inlineSet:
		return parsePayload("--payload", []byte(s.inline))
	case s.file != "":
		data, err := readInput(s.file, stdin)
		if err != nil {
			return nil, fmt.Errorf("read --payload-file: %w", err)
		}
		return parsePayload("--payload-file "+s.file, data)
	}
	return nil, nil
}

// readInput reads a whole file, or stdin when name is "-".
func readInput(name string, stdin io.Reader) ([]byte, error) {
	var r io.Reader
	if name == "-" {
		if stdin == nil {
			return nil, fmt.Errorf("no standard input")
		}
		r = stdin
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxInputSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxInputSize {
		return nil, fmt.Errorf("%s is larger than %d MiB", name, maxInputSize>>20)
	}
	return data, nil
}

// parseSelector parses --selector values: each holds one or more comma-separated key=value
// labels, and the flag may repeat.
func parseSelector(values []string) (map[string]string, error) {
	if len(values) == 0 {
		return nil, nil
	}
	sel := make(map[string]string)
	for _, v := range values {
		for pair := range strings.SplitSeq(v, ",") {
			pair = strings.TrimSpace(pair)
			if pair == "" {
				continue
			}
			key, val, ok := strings.Cut(pair, "=")
			key, val = strings.TrimSpace(key), strings.TrimSpace(val)
			if !ok || key == "" {
				return nil, usageErrorf("invalid --selector %q: want key=value", pair)
			}
			if prev, dup := sel[key]; dup && prev != val {
				return nil, usageErrorf("invalid --selector: label %q given twice (%q and %q)", key, prev, val)
			}
			sel[key] = val
		}
	}
	return sel, nil
}

// scheduleFlags are the flags that make a job's schedule.
type scheduleFlags struct {
	cron     string
	every    string
	at       string
	timezone string
}

// schedule builds the schedule the flags describe: nil when none was given, which makes a
// job that runs only when triggered.
func (f scheduleFlags) schedule() (*tockv1.Schedule, error) {
	var given []string
	for name, v := range map[string]string{"--cron": f.cron, "--every": f.every, "--at": f.at} {
		if v != "" {
			given = append(given, name)
		}
	}
	if len(given) > 1 {
		return nil, usageErrorf("give one of --cron, --every or --at, not several")
	}
	if f.timezone != "" && f.cron == "" {
		return nil, usageErrorf("--timezone applies to --cron schedules only")
	}
	s := &tockv1.Schedule{Timezone: f.timezone}
	switch {
	case f.cron != "":
		s.Trigger = &tockv1.Schedule_Cron{Cron: strings.TrimSpace(f.cron)}
	case f.every != "":
		d, err := parsePositiveDuration("--every", f.every)
		if err != nil {
			return nil, err
		}
		s.Trigger = &tockv1.Schedule_Interval{Interval: durationpb.New(d)}
	case f.at != "":
		t, err := time.Parse(time.RFC3339, strings.TrimSpace(f.at))
		if err != nil {
			return nil, usageErrorf("invalid --at %q: want an RFC 3339 time such as 2026-01-02T15:04:05Z", f.at)
		}
		s.Trigger = &tockv1.Schedule_At{At: timestamppb.New(t)}
	default:
		return nil, nil
	}
	return s, nil
}

// parsePositiveDuration parses a Go duration ("90s", "1h30m") given to flag.
func parsePositiveDuration(flag, s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, usageErrorf("invalid %s %q: want a duration such as 90s, 5m or 1h30m", flag, s)
	}
	if d <= 0 {
		return 0, usageErrorf("invalid %s %q: must be positive", flag, s)
	}
	return d, nil
}

// stateNames are the execution states --state accepts, in life order.
var stateNames = []string{"pending", "assigned", "running", "succeeded", "failed", "timed_out", "cancelled", "lost"}

// parseExecutionState reads an execution state as a person types it: "succeeded",
// "timed-out", "TIMED_OUT" or the full enum name.
func parseExecutionState(s string) (tockv1.ExecutionState, error) {
	norm := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), "-", "_"))
	norm = strings.TrimPrefix(norm, "EXECUTION_STATE_")
	if norm == "CANCELED" {
		norm = "CANCELLED"
	}
	v, ok := tockv1.ExecutionState_value["EXECUTION_STATE_"+norm]
	if !ok || v == int32(tockv1.ExecutionState_EXECUTION_STATE_UNSPECIFIED) {
		return 0, usageErrorf("invalid --state %q: want one of %s", s, strings.Join(stateNames, ", "))
	}
	return tockv1.ExecutionState(v), nil
}

// checkLimit rejects a negative --limit; zero means no limit.
func checkLimit(limit int) error {
	if limit < 0 {
		return usageErrorf("invalid --limit %d: must be 0 (no limit) or more", limit)
	}
	return nil
}
