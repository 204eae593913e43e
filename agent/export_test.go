package agent

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
)

// HTTPHandler exposes the handler tock-agent serves at --metrics-addr, for tests.
func HTTPHandler(a *Agent, g prometheus.Gatherer) http.Handler { return a.httpHandler(g) }
