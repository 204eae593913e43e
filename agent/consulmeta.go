package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The meta keys of an agent's Consul service. Values longer than Consul's limit of 512 bytes
// are split at character boundaries over numbered keys, read back by concatenation:
// tock_handlers, tock_handlers_1, tock_handlers_2, … (tock_labels likewise).
const (
	// ConsulMetaAgentID is the agent's id, exactly (the service id is derived from it).
	ConsulMetaAgentID = "tock_agent_id"
	// ConsulMetaService is the Tock service the agent sits next to (--service).
	ConsulMetaService = "tock_service"
	// ConsulMetaWeight is the agent's weight, in decimal.
	ConsulMetaWeight = "tock_weight"
	// ConsulMetaCapacity is the most executions the agent runs at once, in decimal.
	ConsulMetaCapacity = "tock_capacity"
	// ConsulMetaVersion is the agent's version.
	ConsulMetaVersion = "tock_version"
	// ConsulMetaLabels is the agent's labels as a JSON object of strings.
	ConsulMetaLabels = "tock_labels"
	// ConsulMetaHandlers is the local service's handlers, sorted and comma-separated, each
	// name with "%" written "%25" and "," written "%2C".
	ConsulMetaHandlers = "tock_handlers"
	// ConsulMetaHandlersTruncated is "true" when the handlers did not all fit in the meta;
	// the session's Hello lists them all.
	ConsulMetaHandlersTruncated = "tock_handlers_truncated"
)

// Consul's limits on service meta.
const (
	consulMetaValueMax = 512
	consulMetaPairsMax = 64
)

// handlerEscaper escapes a handler name for the comma-separated list.
var handlerEscaper = strings.NewReplacer("%", "%25", ",", "%2C")

// encodeConsulMeta returns the meta of r's Consul service. Labels always fit unless they take
// more than about 29 KB of JSON, which is an error; handlers fill the keys left, and those
// that do not fit are left out, with ConsulMetaHandlersTruncated set. truncated is how many
// were left out, from the end. Handlers with empty names are left out too.
func encodeConsulMeta(r Registration) (meta map[string]string, truncated int, err error) {
	meta = map[string]string{
		ConsulMetaAgentID:  r.ID,
		ConsulMetaService:  r.Service,
		ConsulMetaWeight:   strconv.Itoa(r.Weight),
		ConsulMetaCapacity: strconv.Itoa(r.Capacity),
		ConsulMetaVersion:  Version,
	}
	for k, v := range meta {
		if len(v) > consulMetaValueMax {
			return nil, 0, fmt.Errorf("consul meta %s is %d bytes; Consul allows %d", k, len(v), consulMetaValueMax)
		}
	}
	labels := r.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	lj, err := json.Marshal(labels)
	if err != nil {
		return nil, 0, fmt.Errorf("encode labels: %w", err)
	}
	// One key stays free for ConsulMetaHandlersTruncated.
	budget := consulMetaPairsMax - len(meta) - 1
	labelChunks := chunk(string(lj), consulMetaValueMax)
	if len(labelChunks) > budget-1 {
		return nil, 0, fmt.Errorf("the labels take %d bytes of JSON, more than Consul's service meta can hold", len(lj))
	}
	putChunks(meta, ConsulMetaLabels, labelChunks)
	budget -= len(labelChunks)

	names := make([]string, 0, len(r.Handlers))
	for _, h := range r.Handlers {
		if h != "" { // a service cannot serve a handler without a name
			names = append(names, handlerEscaper.Replace(h))
		}
	}
	kept := len(names)
	var handlerChunks []string
	for {
		handlerChunks = chunk(strings.Join(names[:kept], ","), consulMetaValueMax)
		if len(handlerChunks) <= budget {
			break
		}
		// Drop names until the rest fits; the byte count is a quick first cut.
		room := budget * (consulMetaValueMax - utf8.UTFMax)
		n, size := 0, -1
		for n < kept && size+1+len(names[n]) <= room {
			size += 1 + len(names[n])
			n++
		}
		kept = min(n, kept-1)
	}
	putChunks(meta, ConsulMetaHandlers, handlerChunks)
	if kept < len(names) {
		meta[ConsulMetaHandlersTruncated] = "true"
	}
	return meta, len(names) - kept, nil
}

// DecodeConsulMeta reads what a Tock agent publishes in the meta of its Consul service: its id,
// Tock service, labels, weight, capacity and handlers. (Its address is the service's address
// and port; TTL, Ready and Status are in its checks.) complete is false when the agent had
// more handlers than the meta could hold: its session's Hello is authoritative either way.
func DecodeConsulMeta(meta map[string]string) (r Registration, complete bool, err error) {
	r.ID = meta[ConsulMetaAgentID]
	r.Service = meta[ConsulMetaService]
	var errs []error
	if r.ID == "" {
		errs = append(errs, fmt.Errorf("no %s", ConsulMetaAgentID))
	}
	if r.Service == "" {
		errs = append(errs, fmt.Errorf("no %s", ConsulMetaService))
	}
	positive := func(key string) int {
		n, err := strconv.Atoi(meta[key])
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("%s %q is not a positive integer", key, meta[key]))
		}
		return n
	}
	r.Weight = positive(ConsulMetaWeight)
	r.Capacity = positive(ConsulMetaCapacity)
	if lj, ok := joinChunks(meta, ConsulMetaLabels); ok {
		if err := json.Unmarshal([]byte(lj), &r.Labels); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ConsulMetaLabels, err))
		}
	}
	if r.Labels == nil {
		r.Labels = map[string]string{}
	}
	if hs, ok := joinChunks(meta, ConsulMetaHandlers); ok && hs != "" {
		for _, h := range strings.Split(hs, ",") {
			name, err := url.PathUnescape(h)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", ConsulMetaHandlers, err))
				break
			}
			r.Handlers = append(r.Handlers, name)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Registration{}, false, fmt.Errorf("decode tock-agent consul meta: %w", err)
	}
	return r, meta[ConsulMetaHandlersTruncated] != "true", nil
}

// chunk splits s into pieces of at most max bytes, at character boundaries. The empty string
// is one empty piece.
func chunk(s string, max int) []string {
	pieces := []string{}
	for len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		if cut == 0 {
			cut = max // not UTF-8; any cut will do
		}
		pieces = append(pieces, s[:cut])
		s = s[cut:]
	}
	return append(pieces, s)
}

// putChunks stores pieces under key, key_1, key_2, …
func putChunks(meta map[string]string, key string, pieces []string) {
	for i, p := range pieces {
		meta[chunkKey(key, i)] = p
	}
}

// joinChunks concatenates key, key_1, key_2, … up to the first missing one; false when key
// itself is missing.
func joinChunks(meta map[string]string, key string) (string, bool) {
	first, ok := meta[key]
	if !ok {
		return "", false
	}
	var b strings.Builder
	b.WriteString(first)
	for i := 1; i < consulMetaPairsMax; i++ {
		p, ok := meta[chunkKey(key, i)]
		if !ok {
			break
		}
		b.WriteString(p)
	}
	return b.String(), true
}

func chunkKey(key string, i int) string {
	if i == 0 {
		return key
	}
	return key + "_" + strconv.Itoa(i)
}
