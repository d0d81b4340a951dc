# podflow — the two commands on a fresh machine are `make demo` and `make test`.
SHELL := /bin/bash
GO    ?= go
BIN   := $(CURDIR)/bin
# The release `podflow version` prints: the tag of HEAD, else "dev".
VERSION ?= $(shell git describe --tags --exact-match 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
LDFLAGS := -X github.com/podflow/podflow/internal/version.version=$(VERSION) -X github.com/podflow/podflow/internal/version.commit=$(COMMIT)

.PHONY: screenshots all build generate test test-compose test-go test-race test-localcluster fuzz demo localcluster cluster bench vet fmt clean

all: build

## build: the podflow CLI and the scheduler and triggerer daemons into bin/
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/podflow ./cmd/scheduler $(wildcard ./cmd/triggerer)

## localcluster: bin/localcluster and bin/kubectl (cold build ~25 min on 2 cores; then seconds)
localcluster:
	$(MAKE) -C localcluster build BIN=$(BIN)

## cluster: run the local Kubernetes cluster in the foreground (kubeconfig in .localcluster/kubeconfig)
cluster: localcluster
	$(BIN)/localcluster up --dir $(CURDIR)/.localcluster

## test: every test of both modules, against a throwaway PostgreSQL and the local cluster; then
## test-compose when a Docker engine answers (PODFLOW_COMPOSE_TEST=1: required, 0: skipped)
# The concurrent packages run once, under -race; the rest four packages and
# four tests at a time: most of their time is spent waiting (on PostgreSQL,
# the local cluster, child processes), and -p/-parallel default to the two
# cores.
RACE_PKGS = ./internal/scheduler/... ./internal/store/... ./internal/runstate/...
test: localcluster build
	$(GO) test -count=1 -timeout 30m -p 4 -parallel 4 $$($(GO) list ./... | grep -v -E '/internal/(scheduler|store|runstate)(/|$$)')
	$(GO) test -count=1 -race -timeout 20m $(RACE_PKGS)
	$(MAKE) fuzz
	$(MAKE) -C localcluster test BIN=$(BIN)
	@if [ "$$PODFLOW_COMPOSE_TEST" = 1 ] || { [ "$$PODFLOW_COMPOSE_TEST" != 0 ] && docker info >/dev/null 2>&1; }; then \
		$(MAKE) test-compose; \
	else \
		echo "test-compose: not run (PODFLOW_COMPOSE_TEST=0, or no Docker engine answers; PODFLOW_COMPOSE_TEST=1 makes it required)"; \
	fi

## test-compose: build the image and run the docker-compose stack for real (scripts/compose-test.sh)
test-compose: localcluster
	./scripts/compose-test.sh

## fuzz: fuzz the DAG parser and the template sandbox, 30,000 inputs each (5-15 s)
# -fuzzminimizetime 0: by default a worker spends up to 60 s shrinking each
# input that reaches new code before it fuzzes on, so the first one (found
# within a second) took the whole run and ~15 inputs ran. Unminimized
# corpus entries and crashers are fine here; to shrink a crasher, rerun it
# with the default.
# -fuzztime 30000x, a count: with a duration, Go 1.26's fuzz coordinator may
# report its own stop as "context deadline exceeded" (golang/go#75804, fixed
# in Go 1.27), which failed a CI run with no crashing input.
FUZZ_INPUTS ?= 30000x
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZ_INPUTS) -fuzzminimizetime 0 ./dag/
	$(GO) test -run '^$$' -fuzz '^FuzzRender$$' -fuzztime $(FUZZ_INPUTS) -fuzzminimizetime 0 ./internal/templating/

## demo: run the example DAGs end to end (local PostgreSQL; local cluster unless KUBECONFIG is set)
demo: build
	@if [ -z "$$KUBECONFIG" ]; then $(MAKE) localcluster; fi
	./scripts/demo.sh

## screenshots: docs/screenshots/*.png of the web UI, taken by headless Chromium from the examples' runs
screenshots:
	$(GO) test -count=1 -tags screenshots -run TestScreenshots -timeout 10m ./internal/web/

## bench: the scheduler and parser benchmarks (figures in README.md)
bench: build localcluster
	$(BIN)/podflow bench
	$(GO) test -run '^$$' -bench 'LoadFolder1000$$' -benchtime 3x ./dag/
	$(GO) test -run '^$$' -bench RenderXComPull ./internal/templating/
	$(GO) test -run '^$$' -bench PodOverhead -benchtime 50x ./operators/kubernetes/
	$(GO) test -run '^$$' -bench DeferredPods -benchtime 1x -timeout 20m ./operators/kubernetes/
	$(GO) test -run '^$$' -bench 'ListDagRuns|TriggerVisible' -benchtime 200x ./internal/api/
	$(GO) test -run '^$$' -bench WebUI -benchtime 100x -timeout 20m ./internal/web/
	$(GO) test -run '^$$' -bench WaitStreams500 -benchtime 1x ./internal/api/

## generate: the API server's code from api/openapi.yaml (internal/api's TestGeneratedCodeIsCurrent checks it)
generate:
	$(GO) generate ./internal/api/...

vet:
	$(GO) vet ./...
	cd localcluster && $(GO) vet ./...

fmt:
	gofmt -l -w .

clean:
	rm -rf $(BIN) .localcluster .demo
