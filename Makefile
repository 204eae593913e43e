# Tock's build, run and test entry points. `make help` lists them.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

BIN      := bin
TOOLBIN  := $(CURDIR)/.bin
VENV     := .venv
PY       := $(VENV)/bin/python
GO_TEST_FLAGS ?=
BENCH_FLAGS ?=
export PATH := $(TOOLBIN):$(PATH)

BINARIES := $(BIN)/tockd $(BIN)/tock-agent $(BIN)/tock $(BIN)/example-go

.PHONY: help
help: ## show this help
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-16s %s\n", $$1, $$2}'

.PHONY: build
build: ## build tockd, tock-agent, tock and the Go example into bin/
	go build -o $(BIN)/tockd ./controlplane/cmd/tockd
	go build -o $(BIN)/tock-agent ./agent/cmd/tock-agent
	go build -o $(BIN)/tock ./tools/tock
	go build -o $(BIN)/example-go ./examples/go

.PHONY: run
run: build ## run tockd dev with the Go example service and a demo job firing every 5 seconds
	tools/dev/run.sh

.PHONY: test
test: test-go test-python check-generated lint ## run every test suite and check (Go, Python, end to end, generated code, lint)

.PHONY: test-go
test-go: build $(VENV)/.installed .bin/consul .bin/jaeger ## run the Go tests (unit, store conformance, end to end) against real PostgreSQL, Consul and Jaeger
	TOCK_TESTENV_REQUIRE=1 TOCK_CONSUL_BIN=$(TOOLBIN)/consul TOCK_JAEGER_BIN=$(TOOLBIN)/jaeger \
		go test $(GO_TEST_FLAGS) ./...

.PHONY: test-python
test-python: $(VENV)/.installed ## run the Python SDK tests
	$(VENV)/bin/pytest -q sdk-python/tests

$(VENV)/.installed: sdk-python/pyproject.toml sdk-python/requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r sdk-python/requirements-dev.txt -e './sdk-python[dev]'
	touch $@

# Real Consul and Jaeger for the Go tests (tools/testenv), each built from a module of its own
# under tools/ (about 3.5 minutes each on two cores with cold caches, 15 seconds warm). The
# touch is needed because go build leaves an unchanged binary's time alone.
.bin/consul: tools/consul/go.mod tools/consul/go.sum
	cd tools/consul && go build -o $(TOOLBIN)/consul github.com/hashicorp/consul
	touch $@

.bin/jaeger: tools/jaeger/go.mod tools/jaeger/go.sum
	cd tools/jaeger && go build -o $(TOOLBIN)/jaeger github.com/jaegertracing/jaeger/cmd/jaeger
	touch $@

.PHONY: testenv
testenv: .bin/consul .bin/jaeger ## build the real Consul and Jaeger that the Go tests start, into .bin/

.PHONY: tools
tools: $(TOOLBIN)/.installed ## build the pinned code-generation and lint tools into .bin/

$(TOOLBIN)/.installed: tools/devtools/go.mod tools/devtools/go.sum
	cd tools/devtools && GOBIN=$(TOOLBIN) go install tool
	touch $@

.PHONY: generate
generate: tools $(VENV)/.installed ## regenerate Go and Python code from proto/
	buf format -w
	buf generate
	sdk-python/scripts/generate.sh $(PY)

.PHONY: check-generated
check-generated: ## fail when generated code is stale (runs make generate and diffs)
	$(MAKE) --no-print-directory generate
	@if [ -n "$$(git status --porcelain -- proto docs/api sdk-python/src/tock/_gen)" ]; then \
		echo "generated code is stale; run 'make generate' and commit:"; \
		git status --porcelain -- proto docs/api sdk-python/src/tock/_gen; exit 1; fi

.PHONY: lint
lint: tools $(VENV)/.installed ## buf lint and format, go vet, gofmt, staticcheck, promtool, ruff, mypy
	buf lint
	buf format --diff --exit-code
	go vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	staticcheck ./...
	promtool check rules docs/observability/tock-alerts.rules.yml
	promtool test rules docs/observability/tock-alerts.test.yml
	$(VENV)/bin/ruff check sdk-python examples/python tools/bench/pyhandler
	$(VENV)/bin/ruff format --check sdk-python examples/python tools/bench/pyhandler
	$(VENV)/bin/mypy --config-file sdk-python/pyproject.toml sdk-python/src

.PHONY: bench
bench: ## run the benchmarks against a PostgreSQL the program starts (about 20 minutes); results in tools/bench/out
	go run ./tools/bench $(BENCH_FLAGS)

.PHONY: bench-quick
bench-quick: ## run every benchmark scaled down (under two minutes), to check the benchmark program
	go run ./tools/bench -quick $(BENCH_FLAGS)

.PHONY: clean
clean: ## remove build output and local data
	rm -rf $(BIN) .tock
