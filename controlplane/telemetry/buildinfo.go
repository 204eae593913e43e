package telemetry

import (
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// version is the build's version, set at link time:
//
//	go build -ldflags "-X github.com/tockhq/tock/controlplane/telemetry.version=v1.2.3" ./controlplane/cmd/tockd
var version = ""

// Version returns the build's version: the one set at link time, else the main module's
// version when it has one, else "dev".
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// revision returns the VCS revision the binary was built from, or "".
func revision() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			return s.Value
		}
	}
	return ""
}

// NewBuildInfo returns the gauge tock_build_info: always 1, with the version, VCS revision
// and Go version as labels, so that dashboards can show which build each process runs.
func NewBuildInfo() prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tock_build_info",
		Help: "Always 1; the labels say which build of tockd this is.",
		ConstLabels: prometheus.Labels{
			"version":   Version(),
			"revision":  revision(),
			"goversion": runtime.Version(),
		},
	}, func() float64 { return 1 })
}
