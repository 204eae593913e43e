package agent

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestConsulMetaRoundTrip(t *testing.T) {
	t.Parallel()
	r := Registration{
		ID:       "web-1:7402",
		Service:  "billing",
		Labels:   map[string]string{"zone": "eu-1", "topology.kubernetes.io/region": "ünïcode ✓"},
		Weight:   3,
		Capacity: 40,
		Handlers: []string{"a,b", "plain", "100%", "x"},
	}
	meta, truncated, err := encodeConsulMeta(r)
	require.NoError(t, err)
	require.Zero(t, truncated)
	require.Equal(t, "a%2Cb,plain,100%25,x", meta[ConsulMetaHandlers])
	require.Equal(t, "3", meta[ConsulMetaWeight])
	require.Equal(t, "40", meta[ConsulMetaCapacity])
	require.Equal(t, Version, meta[ConsulMetaVersion])
	checkConsulLimits(t, meta)

	got, complete, err := DecodeConsulMeta(meta)
	require.NoError(t, err)
	require.True(t, complete)
	require.Equal(t, r, got)
}

func TestConsulMetaNoHandlersNoLabels(t *testing.T) {
	t.Parallel()
	meta, _, err := encodeConsulMeta(Registration{ID: "a", Service: "s", Weight: 1, Capacity: 1})
	require.NoError(t, err)
	require.Equal(t, "", meta[ConsulMetaHandlers])
	require.Equal(t, "{}", meta[ConsulMetaLabels])
	got, complete, err := DecodeConsulMeta(meta)
	require.NoError(t, err)
	require.True(t, complete)
	require.Empty(t, got.Handlers)
	require.Equal(t, map[string]string{}, got.Labels)
}

func TestConsulMetaSplitsLongValues(t *testing.T) {
	t.Parallel()
	var handlers []string
	for i := range 200 {
		handlers = append(handlers, fmt.Sprintf("handler-number-%03d-ééé", i)) // multi-byte runes at cuts
	}
	r := Registration{ID: "a", Service: "s", Weight: 1, Capacity: 1, Handlers: handlers,
		Labels: map[string]string{"long": strings.Repeat("λ", 400)}}
	meta, truncated, err := encodeConsulMeta(r)
	require.NoError(t, err)
	require.Zero(t, truncated)
	require.Contains(t, meta, ConsulMetaHandlers+"_1")
	require.Contains(t, meta, ConsulMetaLabels+"_1")
	checkConsulLimits(t, meta)
	got, complete, err := DecodeConsulMeta(meta)
	require.NoError(t, err)
	require.True(t, complete)
	require.Equal(t, handlers, got.Handlers)
	require.Equal(t, r.Labels, got.Labels)
}

func TestConsulMetaTruncatesHandlers(t *testing.T) {
	t.Parallel()
	var handlers []string
	for i := range 3000 {
		handlers = append(handlers, fmt.Sprintf("a-rather-long-handler-name-%05d", i))
	}
	meta, truncated, err := encodeConsulMeta(Registration{ID: "a", Service: "s", Weight: 1, Capacity: 1, Handlers: handlers})
	require.NoError(t, err)
	require.Positive(t, truncated)
	checkConsulLimits(t, meta)
	got, complete, err := DecodeConsulMeta(meta)
	require.NoError(t, err)
	require.False(t, complete)
	require.Equal(t, handlers[:len(handlers)-truncated], got.Handlers)
	require.Greater(t, len(got.Handlers), 700, "the meta holds as many as fit")
}

func TestConsulMetaRejectsHugeLabels(t *testing.T) {
	t.Parallel()
	labels := map[string]string{}
	for i := range 100 {
		labels[fmt.Sprint("k", i)] = strings.Repeat("v", 400)
	}
	_, _, err := encodeConsulMeta(Registration{ID: "a", Service: "s", Weight: 1, Capacity: 1, Labels: labels})
	require.ErrorContains(t, err, "labels")
}

func TestDecodeConsulMetaErrors(t *testing.T) {
	t.Parallel()
	_, _, err := DecodeConsulMeta(map[string]string{
		ConsulMetaWeight: "0", ConsulMetaCapacity: "x", ConsulMetaLabels: "[", ConsulMetaHandlers: "%zz",
	})
	for _, want := range []string{ConsulMetaAgentID, ConsulMetaService, ConsulMetaWeight, ConsulMetaCapacity,
		ConsulMetaLabels, ConsulMetaHandlers} {
		require.ErrorContains(t, err, want)
	}
}

func FuzzConsulMeta(f *testing.F) {
	f.Add("web-1", "billing", "zone", "eu-1", "a,b,c", 40)
	f.Add("x", "y", "", "", "%,%2C,,", 1)
	f.Add("ü", "s", "k\x00", "\xff", strings.Repeat("h,", 400), 7)
	f.Fuzz(func(t *testing.T, id, service, lk, lv, handlers string, n int) {
		if len(id)+len(service)+len(lk)+len(lv)+len(handlers) > 1<<13 {
			return // larger inputs only slow the fuzzer down; the tests above cover them
		}
		r := Registration{ID: id, Service: service, Weight: 1, Capacity: 1,
			Labels: map[string]string{lk: lv}, Handlers: strings.Split(handlers, ",")}
		for range n % 50 {
			r.Handlers = append(r.Handlers, handlers)
		}
		r.Handlers = slices.DeleteFunc(r.Handlers, func(h string) bool { return h == "" })
		meta, truncated, err := encodeConsulMeta(r)
		if err != nil {
			return // too long for Consul's meta
		}
		checkConsulLimits(t, meta)
		got, complete, err := DecodeConsulMeta(meta)
		if id == "" || service == "" {
			require.Error(t, err)
			return
		}
		require.NoError(t, err)
		require.Equal(t, truncated == 0, complete)
		require.True(t, slices.Equal(r.Handlers[:len(r.Handlers)-truncated], got.Handlers),
			"want %q, got %q", r.Handlers[:len(r.Handlers)-truncated], got.Handlers)
		require.Equal(t, r.ID, got.ID)
		require.Equal(t, r.Service, got.Service)
		require.Len(t, got.Labels, 1) // JSON replaces invalid UTF-8, so only the count is exact
	})
}

// consulMetaKey is what Consul accepts as a meta key.
var consulMetaKey = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,128}$`)

// checkConsulLimits fails unless meta is within Consul's limits.
func checkConsulLimits(t *testing.T, meta map[string]string) {
	t.Helper()
	require.LessOrEqual(t, len(meta), consulMetaPairsMax)
	for k, v := range meta {
		require.LessOrEqual(t, len(v), consulMetaValueMax, "meta %s", k)
		require.Regexp(t, consulMetaKey, k)
	}
}
