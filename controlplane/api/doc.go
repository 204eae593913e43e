// Package api serves the control plane's gRPC services: the public tock.v1 API (jobs,
// executions, agents) and the built-in agent registry (tock.agent.v1.RegistryService), and
// exposes tock.v1 as REST/JSON through grpc-gateway.
//
// Generated protobuf types stay in this package: requests are validated and converted to the
// store's records here (convert.go), and errors are mapped to gRPC status codes once
// (status.go). Clients never see internal error text.
package api
