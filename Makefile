# ModelLoop developer commands. `make help` lists them.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST := $(VENV)/bin/pytest
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.DEFAULT_GOAL := help

##@ Set-up
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

.PHONY: venv
venv: $(VENV)/.installed ## Python virtualenv with the package and dev tools

.PHONY: deps
deps: venv ## Everything the tests need: Debian packages and the Go-built control plane
	hack/install-system-deps.sh
	hack/controlplane/build.sh
	hack/thirdparty-crds.sh
	hack/helm/build.sh
	hack/checkov.sh

##@ Development
.PHONY: crds
crds: venv ## Regenerate crds/ and docs/reference.md from the pydantic models
	$(PY) -m modelloop.api.crdgen crds
	$(PY) -m modelloop.api.docgen docs/reference.md

.PHONY: lint
lint: venv ## ruff (lint + format check), mypy (strict) and the import contracts (layers)
	$(VENV)/bin/ruff check operator localcluster tests bench examples
	$(VENV)/bin/ruff format --check operator localcluster tests bench examples
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache --no-logo

.PHONY: fmt
fmt: venv ## Format and autofix
	$(VENV)/bin/ruff format operator localcluster tests bench examples
	$(VENV)/bin/ruff check --fix operator localcluster tests bench examples

##@ Tests
.PHONY: test
test: deps ## All tiers: unit, integration, e2e (starts a local control plane)
	$(PYTEST) tests $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: venv ## Fast hermetic tests
	$(PYTEST) tests/unit

.PHONY: test-integration
test-integration: deps ## Against a real kube-apiserver, etcd, controllers, kwok and Prometheus
	$(PYTEST) tests/integration

.PHONY: test-any-cluster
test-any-cluster: deps ## A subset of the suites on a cluster reached only through a kubeconfig
	hack/any-cluster.sh

.PHONY: test-e2e
test-e2e: deps ## The whole loop (MODELLOOP_TEST_KUBECONFIG=<file> runs it on that cluster)
	$(PYTEST) tests/e2e

.PHONY: e2e-kind
e2e-kind: deps ## Needs Docker + kind: image, chart and suites on a kind cluster
	hack/e2e-kind.sh

##@ Benchmarks
.PHONY: bench
bench: deps ## Evaluation at 1, 100 and 1000 Models x 5 metrics x 10 slices (real Prometheus)
	$(PY) -m bench.evaluation $(BENCH_ARGS)

.PHONY: bench-loop
bench-loop: venv ## Retraining decisions replayed over drifting streams, next to fixed schedules (BENCH_LOOP_ARGS=--short)
	$(PY) -m bench.loop $(BENCH_LOOP_ARGS)

.PHONY: bench-feedback
bench-feedback: venv ## Feedback service: ingest events/s per core (batched, per event), join latency, memory per pending prediction (BENCH_FEEDBACK_ARGS=--short)
	$(PY) -m bench.feedback $(BENCH_FEEDBACK_ARGS)

N ?= 100
.PHONY: bench-scrape
bench-scrape: venv ## One /metrics scrape per series: CPU, peak memory, bytes; streamed and whole (BENCH_SCRAPE_ARGS=--short)
	$(PY) -m bench.scrape $(BENCH_SCRAPE_ARGS)

.PHONY: bench-scale
bench-scale: deps ## The operator on the local control plane with N Models (N=100): Ready time, CPU, RSS, API and Prometheus requests, spec-edit latency (BENCH_SCALE_ARGS=--short)
	$(PY) -m bench.scale --models $(N) $(BENCH_SCALE_ARGS)

.PHONY: bench-canaries
bench-canaries: deps ## CPU per rolling canary per minute at 10 and 50 canaries, analysed every 10 s (BENCH_CANARIES_ARGS=--short)
	$(PY) -m bench.scale.canaries $(BENCH_CANARIES_ARGS)

.PHONY: chaos
chaos: deps ## 3 Models' loops under 100 operator kills, 3 API server restarts, Prometheus down 1m; then the invariants (CHAOS_ARGS=--short)
	$(PY) -m tests.chaos $(CHAOS_ARGS)

##@ Installation
DIST ?= dist
.PHONY: install-manifests
install-manifests: ## dist/install.yaml: the chart rendered for `kubectl apply` (namespace modelloop-system)
	@mkdir -p $(DIST)
	@helm="$$(hack/helm/build.sh)" && { \
	  printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: modelloop-system\n'; \
	  "$$helm" template modelloop charts/modelloop --namespace modelloop-system; \
	} > $(DIST)/install.yaml
	@echo "wrote $(DIST)/install.yaml"

##@ Run
.PHONY: demo
demo: deps ## The whole loop on a local control plane (DEMO_ARGS=--smoke: shorter)
	$(PY) -m localcluster.demo $(DEMO_ARGS)

.PHONY: help
help: ## This list
	@awk 'BEGIN {FS = ":.*##"} /^##@/ {printf "\n%s\n", substr($$0, 5)} /^[a-zA-Z_-]+:.*##/ {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
