package pg

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
)

// target is a store URL, parsed.
type target struct {
	// config is what pgx made of the URL.
	config *pgxpool.Config
	// cockroach is true when the scheme is cockroach://.
	cockroach bool
	// redacted is the URL without its secrets, for messages.
	redacted string
	// secrets are the URL's secrets as they may appear in a driver's message.
	secrets []string
}

// secretParams are the query parameters that carry secrets.
var secretParams = []string{"password", "sslpassword"}

// parseURL reads a postgres://, postgresql:// or cockroach:// URL. A cockroach:// URL is a
// postgresql:// URL to pgx. No error it returns contains the password.
func parseURL(raw string) (target, error) {
	if strings.TrimSpace(raw) == "" {
		return target{}, errors.New("empty store URL")
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		// Maybe a key=value connection string, which can hold a password: do not echo it.
		return target{}, errors.New("store URL is not a URL: want postgres://, postgresql:// or cockroach://")
	}
	var t target
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql":
	case "cockroach":
		t.cockroach = true
	default:
		return target{}, fmt.Errorf("store URL scheme %q is not supported: want postgres://, postgresql:// or cockroach://", scheme)
	}
	u, err := url.Parse("postgresql://" + rest)
	if err != nil {
		// The message of a url.Error quotes the URL, password included; describe it instead.
		return target{}, fmt.Errorf("invalid %s:// URL: %s", scheme, describeURLError(err))
	}
	if pw, ok := u.User.Password(); ok {
		t.secrets = append(t.secrets, pw)
	}
	q := u.Query()
	for _, p := range secretParams {
		t.secrets = append(t.secrets, q[p]...)
	}
	// As they may appear escaped; longest first, so that a secret containing another is
	// removed whole.
	for _, s := range t.secrets {
		t.secrets = append(t.secrets, url.QueryEscape(s), url.PathEscape(s))
	}
	t.secrets = dedupeSecrets(t.secrets)
	t.redacted = t.scrub(redact(u, scheme))

	t.config, err = pgxpool.ParseConfig(u.String())
	if err != nil {
		// pgx's message quotes the URL again: keep only what it says is wrong.
		msg := t.scrub(err.Error())
		if strings.HasPrefix(msg, "cannot parse `") {
			if _, reason, ok := strings.Cut(msg, "`: "); ok {
				msg = reason
			}
		}
		return target{}, fmt.Errorf("invalid store URL %s: %s", t.redacted, msg)
	}
	if !q.Has("pool_max_conns") {
		// pgx's default, max(4, cores), starves a control plane whose API, scheduler and
		// agent sessions each hold a connection per transaction.
		t.config.MaxConns = defaultMaxConns()
	}
	return t, nil
}

// defaultMaxConns is the pool size unless the URL sets pool_max_conns: 16, or four per core
// on a larger machine.
func defaultMaxConns() int32 {
	return int32(max(16, 4*runtime.NumCPU()))
}

// redact returns u as it was written, its password and secret parameters replaced.
func redact(u *url.URL, scheme string) string {
	c := *u
	c.Scheme = scheme
	if c.RawQuery != "" {
		q := c.Query()
		for _, p := range secretParams {
			if q.Has(p) {
				q.Set(p, "xxxxx")
			}
		}
		c.RawQuery = q.Encode()
	}
	return c.Redacted()
}

// scrub removes the URL's secrets from a message.
func (t target) scrub(msg string) string {
	for _, s := range t.secrets {
		msg = strings.ReplaceAll(msg, s, "xxxxx")
	}
	return msg
}

// scrubError returns err with the URL's secrets removed from its message. The chain of a
// driver's error can hold the connection settings, password included, so it is cut; a
// context error is kept, for errors.Is.
func (t target) scrubError(err error) error {
	if err == nil {
		return nil
	}
	msg := t.scrub(err.Error())
	for _, ctxErr := range []error{context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, ctxErr) {
			return &withCause{msg: msg, cause: ctxErr}
		}
	}
	return errors.New(msg)
}

// withCause is an error with its own message that unwraps to cause.
type withCause struct {
	msg   string
	cause error
}

func (e *withCause) Error() string { return e.msg }
func (e *withCause) Unwrap() error { return e.cause }

// dedupeSecrets drops empty and repeated secrets and sorts the rest longest first.
func dedupeSecrets(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	slices.SortStableFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// describeURLError says what is wrong with a URL without quoting it.
func describeURLError(err error) string {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return "cannot be parsed"
	}
	var (
		escape url.EscapeError
		host   url.InvalidHostError
	)
	switch {
	case errors.As(ue.Err, &escape):
		return "bad percent-encoding (escape special characters of the user name and password)"
	case errors.As(ue.Err, &host):
		return "invalid character in the host"
	case strings.Contains(ue.Err.Error(), "invalid port"):
		return "invalid port"
	case strings.Contains(ue.Err.Error(), "userinfo"):
		return "invalid user name or password (escape their special characters)"
	}
	return "cannot be parsed"
}
