// Package testenv starts a real Consul agent and a real Jaeger for a test, as child processes
// on free loopback ports, and stops them when the test ends.
//
//	func TestDiscovery(t *testing.T) {
//		consul := testenv.Consul(t)       // -dev agent; consul.HTTPAddr is its HTTP API
//		jaeger := testenv.Jaeger(t)       // jaeger.OTLPGRPCAddr, .OTLPHTTPAddr, .QueryURL
//		…
//		consul.Restart()                  // same ports; a -dev agent comes back empty
//		tr := jaeger.WaitForTrace(traceID, func(tr testenv.Trace) bool { return len(tr.Spans) == 3 })
//	}
//
// Every call starts processes of its own, so parallel tests and test binaries do not share
// state. Starts wait, polling with a deadline, until the process serves: Consul has a leader
// and its own node in the catalog; Jaeger's query API and both OTLP receivers answer. Ports
// are found free and handed to the process; when one is taken before the process binds it,
// the first start is tried again on other ports. Each process writes its log to a file in its
// Dir; when the test fails, the end of the log is printed.
//
// # Binaries
//
// The binaries are the ones the repository pins and builds as modules of their own
// (tools/consul: Consul v1.20.2; tools/jaeger: Jaeger v2, module v1.76.0). Each is looked for:
//
//  1. in the file the environment names: TOCK_CONSUL_BIN, TOCK_JAEGER_BIN (the test fails when
//     it names no executable file);
//  2. in .bin/ of the repository root (the folder of the go.mod of module
//     github.com/tockhq/tock, found by walking up from the working directory), where
//     `make .bin/consul` and `make .bin/jaeger` build them;
//  3. on PATH.
//
// When a binary is nowhere, the test is skipped with a message naming the make target; with
// TOCK_TESTENV_REQUIRE set (CI sets it), it fails instead.
//
// # Consul
//
// Consul starts `consul agent -dev`: a single server with everything in memory, listening on
// loopback for HTTP, server RPC and Serf LAN only (no DNS, gRPC, HTTPS or WAN). StartConsul
// with Persistent set runs a single server with a data directory instead, whose catalog, KV
// store and agent services survive Restart. Stop and Kill leave the agent down (requests are
// refused) until Restart brings it back on the same ports.
//
// # Jaeger
//
// Jaeger runs Jaeger v2 with a configuration of its own (jaeger.yaml in its Dir): in-memory
// storage, the OTLP receiver over gRPC and HTTP, and the query API over HTTP and gRPC, each on
// its own port, and no other listener (the all-in-one default also opens the Jaeger, Zipkin,
// sampling, health, metrics and debug ports, all fixed, so two could not run at once).
// Services, Trace and FindTraces read the query API; WaitForTrace and WaitForTraces poll it
// until spans, which exporters send in batches, have arrived. Traces come back in Jaeger's
// JSON model; see Trace and Span for how OTLP maps onto it.
package testenv
