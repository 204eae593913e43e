// Command tock is the command-line client of Tock's public API (tock.v1): it creates,
// inspects, pauses, triggers and deletes jobs, lists their fires, reads and cancels
// executions, and lists the agents the control plane knows.
//
// The command tree:
//
//	tock [--server ADDR] [-o table|json] [--timeout D] [--token T]
//	├── job
//	│   ├── create NAME --handler H [...] | create -f job.json
//	│   ├── list [--limit N]
//	│   ├── get NAME
//	│   ├── delete NAME
//	│   ├── pause NAME
//	│   ├── resume NAME
//	│   ├── trigger NAME [--payload JSON] [--request-id ID]
//	│   └── fires NAME [--limit N]
//	├── exec
//	│   ├── list [--job NAME] [--state S] [--limit N]
//	│   ├── get ID
//	│   └── cancel ID [--reason R]
//	├── agent
//	│   └── list [--service S]
//	└── version
//
// tock talks gRPC to a control plane (tockd) at --server, or TOCK_SERVER when the flag is
// not given; a bearer token comes from --token or TOCK_TOKEN. Each call has its own
// deadline (--timeout). With -o json every command prints protojson in the shape the REST
// API answers with: the resource itself for calls on one resource (a Job, an Execution),
// the list message for lists ({"executions": [...], "nextPageToken": "..."}), with the same
// field names, so scripts can parse either.
//
// Exit codes: 0 on success, 1 when a call or a local operation fails (the error is printed
// to stderr as "tock: <code in words>: <message>" for API errors), 2 on a usage error (an
// unknown command or flag, a missing argument, or a flag value that does not parse).
//
// An end-to-end test can build this package, run the binary against a real tockd with
// --server and -o json, and decode stdout with protojson into the tock.v1 response types.
//
// main only builds a Main and runs it; Main holds the process's streams, environment and
// the way it connects, so the whole command runs in tests with other values for each.
package main
