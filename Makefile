# Flywheel — the two commands a newcomer needs are `make demo` and `make test`.
# Both install and start what they need (apt packages, the dev servers) on Debian/Ubuntu.
SHELL := /bin/bash
.DEFAULT_GOAL := help

export PATH := $(PATH):/usr/local/go/bin:/usr/sbin
GO ?= go

STACK := deploy/local/stack
SERVICES := deploy/local/services
DEV_DIR := $(CURDIR)/.flywheel
TEST_DIR := $(CURDIR)/.flywheel/test-stack

# The test stack runs on its own ports and data dir, beside any dev stack.
TEST_STACK_ENV := FLYWHEEL_STACK_DIR=$(TEST_DIR) FLYWHEEL_STACK_KAFKA_PORT=19092 \
	FLYWHEEL_STACK_NATS_PORT=14222 FLYWHEEL_STACK_NATS_MONITOR_PORT=18222 \
	FLYWHEEL_STACK_REDIS_PORT=16379 FLYWHEEL_STACK_CLICKHOUSE_PORT=19000 \
	FLYWHEEL_STACK_CLICKHOUSE_HTTP_PORT=18123 FLYWHEEL_STACK_CLICKHOUSE_INTERSERVER_PORT=19009

# The chaos suite's stack: ports and data dir of its own, since it restarts the servers.
CHAOS_DIR := $(CURDIR)/.flywheel/chaos-stack
CHAOS_STACK_ENV := FLYWHEEL_STACK_DIR=$(CHAOS_DIR) FLYWHEEL_STACK_KAFKA_PORT=29092 \
	FLYWHEEL_STACK_NATS_PORT=24222 FLYWHEEL_STACK_NATS_MONITOR_PORT=28222 \
	FLYWHEEL_STACK_REDIS_PORT=26379 FLYWHEEL_STACK_CLICKHOUSE_PORT=29000 \
	FLYWHEEL_STACK_CLICKHOUSE_HTTP_PORT=28123 FLYWHEEL_STACK_CLICKHOUSE_INTERSERVER_PORT=29009

# Every module of go.work, as package patterns.
MODULES := $(shell sed -n 's/^\t\.\/\(.*\)$$/.\/\1\/.../p' go.work)
TEST_FLAGS ?= -race -count=1 -timeout 12m

.PHONY: help test unit up down demo build stack-up stack-down stack-test-up stack-test-down bench bench-serving bench-drift fuzz vet fmt chaos images compose-check

help:
	@echo "make demo   start the local stack and every service, then show the lifecycle working"
	@echo "make test   start a private test stack, run every module's tests, stop the stack"
	@echo "make up / make down      start / stop the stack and the six services in the background"
	@echo "make bench  benchmarks (see docs/benchmarks.md)   make fuzz  fuzz the parsers"
	@echo "make bench-serving  serving under load beside FastAPI and the Go floor (~40 min; REPS, DUR, RATES)"
	@echo "make bench-drift  drift detection quality and window throughput, synthetic streams (~10 min; DRIFTBENCH_FLAGS)"
	@echo "make chaos  fault injection: kill services, restart the servers under load (own stack, ~10 min)"
	@echo "make images  build the six service images with podman, run each against the dev stack until ready (~10 min)"
	@echo "make compose-check  check deploy/compose/docker-compose.yml against the services' variables"

test:
	@trap '$(TEST_STACK_ENV) $(STACK) down' EXIT; \
	  $(TEST_STACK_ENV) $(STACK) up && set -a && . $(TEST_DIR)/env && set +a && \
	  $(GO) test $(TEST_FLAGS) $(MODULES)

unit:
	$(GO) test -short -count=1 $(MODULES)

vet:
	$(GO) vet $(MODULES)

fmt:
	gofmt -w $$(git ls-files '*.go')

build:
	@mkdir -p $(DEV_DIR)/bin
	$(GO) build -o $(DEV_DIR)/bin/ ./cmd/flywheel ./services/ingest/cmd/ingest ./services/features/cmd/features \
	  ./services/registry/cmd/registry ./services/serving/cmd/serving ./services/monitor/cmd/monitor \
	  ./services/trainer/cmd/trainer

stack-up:
	@$(STACK) up

stack-down:
	@$(STACK) down

stack-test-up:
	@$(TEST_STACK_ENV) $(STACK) up

stack-test-down:
	@$(TEST_STACK_ENV) $(STACK) down

up: stack-up build
	@$(SERVICES) up

down:
	@$(SERVICES) down
	@$(STACK) down

# The demo starts from an empty dev stack and runs its own services (flywheel demo).
demo: build
	@$(SERVICES) down >/dev/null 2>&1 || true
	@$(STACK) down --purge >/dev/null && $(STACK) up
	@set -a; . $(DEV_DIR)/stack/env; set +a; $(DEV_DIR)/bin/flywheel demo && \
	  echo "checking every Grafana panel's query on the demo's data ..." && \
	  FLYWHEEL_GRAFANA_DEMO_DATABASE=$${FLYWHEEL_CLICKHOUSE_DATABASE:-flywheel} $(GO) test -count=1 -run '^TestGrafanaPanelsAfterTheDemo$$' ./tests/e2e/ >$(DEV_DIR)/demo/panels.log 2>&1 && \
	  echo "every dashboard panel and annotation query returned rows (deploy/grafana)" || \
	  { tail -40 $(DEV_DIR)/demo/panels.log; exit 1; }

bench:
	@trap '$(TEST_STACK_ENV) $(STACK) down' EXIT; \
	  $(TEST_STACK_ENV) $(STACK) up && set -a && . $(TEST_DIR)/env && set +a && \
	  $(GO) test -run '^$$' -bench . -benchmem -count=$${COUNT:-5} $(MODULES) | tee $(DEV_DIR)/bench.txt

# Serving under load, side by side with the shared FastAPI and floor anchors (issue #10).
bench-serving:
	@command -v apt-get >/dev/null && { dpkg -s python3-fastapi python3-uvicorn python3-redis python3-sklearn \
	  python3-uvloop python3-httptools wrk redis-server >/dev/null 2>&1 || { $$(command -v sudo) apt-get update -qq && \
	  $$(command -v sudo) apt-get install -y -qq python3-fastapi python3-uvicorn python3-redis python3-sklearn python3-uvloop \
	  python3-httptools wrk redis-server; }; } ; \
	  [ -x "$$($(GO) env GOPATH)/bin/vegeta" ] || $(GO) install github.com/tsenart/vegeta/v12@v12.13.0; \
	  trap '$(TEST_STACK_ENV) $(STACK) down' EXIT; $(TEST_STACK_ENV) $(STACK) up && \
	  services/serving/bench/bench.sh $${REPS:-3}

# Drift detection quality and window throughput on synthetic streams (issue #11): the monitor's
# defaults beside the fixed KS/Wasserstein/PSI rules; results in .flywheel/bench-drift.{md,json}.
bench-drift:
	@mkdir -p $(DEV_DIR)
	$(GO) run ./ml/drift/cmd/driftbench -json $(DEV_DIR)/bench-drift.json -md $(DEV_DIR)/bench-drift.md $(DRIFTBENCH_FLAGS)
	@cat $(DEV_DIR)/bench-drift.md
	$(GO) test -run '^$$' -bench '^BenchmarkWindow$$' -benchmem ./ml/drift/

fuzz:
	@for target in $$(grep -rl --include='*_test.go' '^func Fuzz' services platform schemas ml | xargs -n1 dirname | sort -u); do \
	  for f in $$(grep -h '^func Fuzz' $$target/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
	    echo "fuzz $$target $$f"; (cd $$target && $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $${FUZZTIME:-30s} .) || exit 1; \
	  done; done

# Fault injection (issue #13): a fresh stack of its own, the six services as processes, a steady
# load, every service SIGKILLed and every server restarted; then exactly-once checks. Service
# logs stay in .flywheel/chaos-stack/chaos-logs for the next look.
chaos:
	@trap '$(CHAOS_STACK_ENV) $(STACK) down' EXIT; \
	  $(CHAOS_STACK_ENV) $(STACK) down --purge >/dev/null; \
	  $(CHAOS_STACK_ENV) $(STACK) up && set -a && . $(CHAOS_DIR)/env && set +a && \
	  export $(CHAOS_STACK_ENV) && $(GO) test -tags chaos -count=1 -v -timeout 30m -run '^TestChaos$$' ./tests/e2e/

# Container images (issue #12): podman builds deploy/docker/Dockerfile for each service and runs
# each image against the dev stack until /readyz is 200 (FLYWHEEL_IMAGES_* in deploy/docker/images.sh).
images:
	@deploy/docker/images.sh

compose-check:
	@/usr/bin/python3 -c 'import yaml' 2>/dev/null || { $$(command -v sudo) apt-get update -qq && $$(command -v sudo) apt-get install -y -qq python3-yaml; }
	@/usr/bin/python3 deploy/compose/check.py
