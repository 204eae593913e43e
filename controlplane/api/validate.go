package api

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tockhq/tock/controlplane/retry"
	"github.com/tockhq/tock/controlplane/schedule"
	"github.com/tockhq/tock/controlplane/scheduler"
	"github.com/tockhq/tock/controlplane/store"
	tockv1 "github.com/tockhq/tock/proto/tock/v1"
)

// Limits on what a job may hold.
const (
	MaxPayloadBytes = 1 << 20
	DefaultTimeout  = time.Minute
	MaxTimeout      = 24 * time.Hour
	MinTimeout      = time.Second
	MaxAttempts     = 100
	MaxPriority     = 1000
	maxSelector     = 32
	maxHandlerLen   = 256
)

// fieldError is invalid input, naming the field at fault. It becomes InvalidArgument.
type fieldError struct {
	field  string
	reason string
}

func (e *fieldError) Error() string { return e.field + ": " + e.reason }

func invalid(field, format string, args ...any) error {
	return &fieldError{field: field, reason: fmt.Sprintf(format, args...)}
}

var dnsLabel = regexp.MustCompile(`^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`)

// requestID is the form of TriggerJob's idempotency key.
var requestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// validateRequestID checks an optional idempotency key.
func validateRequestID(field, id string) error {
	switch {
	case len(id) > 128:
		return invalid(field, "is %d bytes long: a request id is 1 to 128 letters, digits, '.', '_', ':' or '-'", len(id))
	case id != "" && !requestID.MatchString(id):
		return invalid(field, "%q is not a request id: use 1 to 128 letters, digits, '.', '_', ':' or '-' (a UUID, say)", id)
	}
	return nil
}

func validateName(field, name string) error {
	switch {
	case name == "":
		return invalid(field, "is required")
	case !dnsLabel.MatchString(name):
		return invalid(field, "%q is not a DNS label: use 1 to 63 lowercase letters, digits and '-', starting with a letter and not ending with '-'", name)
	}
	return nil
}

// jobFromProto validates a job from a request and converts it. now is the database clock,
// used to check that a schedule fires.
func jobFromProto(p *tockv1.Job, now time.Time) (store.Job, error) {
	if p == nil {
		return store.Job{}, invalid("job", "is required")
	}
	if err := validateName("job.name", p.GetName()); err != nil {
		return store.Job{}, err
	}
	job := store.Job{
		Name:     p.GetName(),
		Handler:  strings.TrimSpace(p.GetHandler()),
		Service:  p.GetService(),
		Selector: p.GetSelector(),
		Priority: int(p.GetPriority()),
	}
	switch {
	case job.Handler == "":
		return store.Job{}, invalid("job.handler", "is required: name the handler to run, such as \"echo\"")
	case len(job.Handler) > maxHandlerLen:
		return store.Job{}, invalid("job.handler", "is longer than %d characters", maxHandlerLen)
	}
	if job.Service != "" {
		if err := validateName("job.service", job.Service); err != nil {
			return store.Job{}, err
		}
	}
	if len(job.Selector) > maxSelector {
		return store.Job{}, invalid("job.selector", "has more than %d labels", maxSelector)
	}
	for k := range job.Selector {
		if k == "" {
			return store.Job{}, invalid("job.selector", "has an empty label name")
		}
	}
	if job.Priority < -MaxPriority || job.Priority > MaxPriority {
		return store.Job{}, invalid("job.priority", "must be between %d and %d, got %d", -MaxPriority, MaxPriority, job.Priority)
	}
	sched, err := scheduleFromProto("job.schedule", p.GetSchedule(), now)
	if err != nil {
		return store.Job{}, err
	}
	job.Schedule = sched
	payload, ct, err := payloadFromValue(p.GetPayload())
	if err != nil {
		return store.Job{}, invalid("job.payload", "is not valid JSON: %v", err)
	}
	if len(payload) > MaxPayloadBytes {
		return store.Job{}, invalid("job.payload", "is %d bytes; the limit is %d", len(payload), MaxPayloadBytes)
	}
	job.Payload, job.ContentType = payload, ct
	job.Timeout = DefaultTimeout
	if p.GetTimeout() != nil {
		if err := p.GetTimeout().CheckValid(); err != nil {
			return store.Job{}, invalid("job.timeout", "is not a valid duration: %v", err)
		}
		job.Timeout = p.GetTimeout().AsDuration()
		if job.Timeout < MinTimeout || job.Timeout > MaxTimeout {
			return store.Job{}, invalid("job.timeout", "must be between %s and %s, got %s", MinTimeout, MaxTimeout, job.Timeout)
		}
	}
	job.Retry, err = retryFromProto(p.GetRetryPolicy())
	if err != nil {
		return store.Job{}, err
	}
	if err := policiesFromProto(p, &job); err != nil {
		return store.Job{}, err
	}
	if job.Routing, err = routingFromProto(p.GetRouting()); err != nil {
		return store.Job{}, err
	}
	return job, nil
}

// scheduleFromProto validates a schedule and converts it; field names it in errors. A cron
// expression must fire within five years after now.
func scheduleFromProto(field string, p *tockv1.Schedule, now time.Time) (*store.Schedule, error) {
	if p == nil {
		return nil, nil
	}
	s := &store.Schedule{Timezone: p.GetTimezone()}
	switch t := p.GetTrigger().(type) {
	case *tockv1.Schedule_Cron:
		s.Cron = t.Cron
		if strings.TrimSpace(s.Cron) == "" {
			return nil, invalid(field+".cron", "is empty")
		}
	case *tockv1.Schedule_Interval:
		if err := t.Interval.CheckValid(); err != nil {
			return nil, invalid(field+".interval", "is not a valid duration: %v", err)
		}
		s.Interval = t.Interval.AsDuration()
		if s.Interval <= 0 {
			return nil, invalid(field+".interval", "must be positive, got %s", s.Interval)
		}
	case *tockv1.Schedule_At:
		if err := t.At.CheckValid(); err != nil {
			return nil, invalid(field+".at", "is not a valid time: %v", err)
		}
		s.At = t.At.AsTime()
	case nil:
		if s.Timezone == "" && p.GetJitter() == nil && p.GetSpringForward() == 0 && p.GetFallBack() == 0 {
			return nil, nil
		}
		return nil, invalid(field, "has no trigger: set cron, interval or at")
	}
	if err := scheduleRulesFromProto(field, p, s); err != nil {
		return nil, err
	}
	if _, err := schedule.Parse(scheduler.SpecOf(*s), now); err != nil {
		var serr *schedule.Error
		if errors.As(err, &serr) {
			return nil, invalid(field+"."+serr.Field, "%s", serr.Reason)
		}
		return nil, invalid(field, "%v", err)
	}
	return s, nil
}

func retryFromProto(p *tockv1.RetryPolicy) (store.RetryPolicy, error) {
	if p == nil {
		return retry.WithDefaults(store.RetryPolicy{}), nil
	}
	r := store.RetryPolicy{
		MaxAttempts:        int(p.GetMaxAttempts()),
		BackoffCoefficient: p.GetBackoffCoefficient(),
		NonRetryableKinds:  p.GetNonRetryableErrorKinds(),
	}
	var err error
	if r.Jitter, err = retryJitterFromProto(p.GetJitter()); err != nil {
		return r, err
	}
	if r.MaxAttempts < 0 || r.MaxAttempts > MaxAttempts {
		return r, invalid("job.retry_policy.max_attempts", "must be between 1 and %d, got %d", MaxAttempts, r.MaxAttempts)
	}
	if math.IsNaN(r.BackoffCoefficient) || (r.BackoffCoefficient != 0 && (r.BackoffCoefficient < 1 || r.BackoffCoefficient > 10)) {
		return r, invalid("job.retry_policy.backoff_coefficient", "must be between 1 and 10, got %v", r.BackoffCoefficient)
	}
	if r.InitialBackoff, err = optionalDuration("job.retry_policy.initial_backoff", p.GetInitialBackoff()); err != nil {
		return r, err
	}
	if r.MaxBackoff, err = optionalDuration("job.retry_policy.max_backoff", p.GetMaxBackoff()); err != nil {
		return r, err
	}
	r = retry.WithDefaults(r)
	if r.MaxBackoff < r.InitialBackoff {
		return r, invalid("job.retry_policy.max_backoff", "(%s) is shorter than initial_backoff (%s)", r.MaxBackoff, r.InitialBackoff)
	}
	return r, nil
}

// optionalDuration validates a duration field that may be absent (zero).
func optionalDuration(field string, d *durationpb.Duration) (time.Duration, error) {
	if d == nil {
		return 0, nil
	}
	if err := d.CheckValid(); err != nil {
		return 0, invalid(field, "is not a valid duration: %v", err)
	}
	v := d.AsDuration()
	if v < 0 || v > MaxTimeout {
		return 0, invalid(field, "must be between 0s and %s, got %s", MaxTimeout, v)
	}
	return v, nil
}
