#!/usr/bin/env bash
# Runs Tock for local development: tockd dev (SQLite under .tock/, built-in registry, one
# agent in the process), the Go example service, and a demo job that fires every 5 seconds.
# Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=bin
GRPC_ADDR=${TOCK_GRPC_ADDR:-127.0.0.1:7400}
HTTP_ADDR=${TOCK_HTTP_ADDR:-127.0.0.1:7401}
APP_ADDR=${TOCK_APP_ADDR:-127.0.0.1:7403}
mkdir -p .tock

pids=()
cleanup() {
	trap - INT TERM EXIT
	echo
	echo "stopping..."
	# tockd first, so that its agent drains while the example service still answers.
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		kill -TERM "${pids[i]}" 2>/dev/null || true
		wait "${pids[i]}" 2>/dev/null || true
	done
	echo "stopped; logs are in .tock/"
}
trap cleanup INT TERM EXIT

"$BIN/example-go" --listen "$APP_ADDR" >.tock/example-go.log 2>&1 &
pids+=($!)
"$BIN/tockd" dev --grpc-addr "$GRPC_ADDR" --http-addr "$HTTP_ADDR" --app-addr "$APP_ADDR" >.tock/tockd.log 2>&1 &
pids+=($!)

# Wait for the control plane to answer.
for _ in $(seq 1 100); do
	if curl -fsS "http://$HTTP_ADDR/healthz" >/dev/null 2>&1; then break; fi
	if ! kill -0 "${pids[1]}" 2>/dev/null; then
		echo "tockd did not start; its log says:"; tail -n 20 .tock/tockd.log; exit 1
	fi
	sleep 0.1
done

TOCK=("$BIN/tock" --server "$GRPC_ADDR")
if ! "${TOCK[@]}" job get demo >/dev/null 2>&1; then
	"${TOCK[@]}" job create demo --handler echo --cron '*/5 * * * * *' --timezone UTC \
		--payload '{"hello": "tock"}' >/dev/null
fi

cat <<MSG

Tock is running.

  REST API     http://$HTTP_ADDR/v1/jobs
  executions   http://$HTTP_ADDR/v1/executions?job=demo
  metrics      http://$HTTP_ADDR/metrics
  gRPC         $GRPC_ADDR

The demo job runs the example's echo handler every 5 seconds. In another terminal:

  bin/tock job list
  bin/tock exec list --job demo
  bin/tock job trigger demo --payload '{"from": "cli"}'
  curl -s http://$HTTP_ADDR/v1/executions?job=demo

Logs: .tock/tockd.log and .tock/example-go.log. Press Ctrl-C to stop.
MSG

wait -n "${pids[@]}" || true
echo "a process exited; see .tock/*.log"
