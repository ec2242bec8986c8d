# Train Conductor. `make help` lists the targets.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV = $(shell hack/venv.sh)
PY = $(VENV)/bin/python
# What `make up` builds: the control plane, and unless TC_UP_MINIMAL is set,
# Jaeger, Helm (which renders the chart's alerts for Prometheus) and Kueue
# (unless TC_UP_QUEUES=0 too).
CLUSTER_TOOLS = etcd kwok kubernetes
UP_TOOLS = $(CLUSTER_TOOLS) $(if $(filter-out 0,$(TC_UP_MINIMAL)),,jaeger helm $(if $(filter 0,$(TC_UP_QUEUES)),,kueue))

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} \
	  /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } \
	  /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Run

.PHONY: up
up: deps ## Run Redis, a Kubernetes control plane, the API, the controller, Prometheus, Jaeger and Kueue locally (TC_UP_QUEUES=0: no Kueue; TC_UP_MINIMAL=1: none of the last three).
	hack/tools/install.sh $(UP_TOOLS)
	$(PY) -m devstack up

.PHONY: cluster-up
cluster-up: ## Start the local Kubernetes control plane (kwok nodes); prints its kubeconfig.
	hack/tools/install.sh $(CLUSTER_TOOLS)
	$(PY) -m devstack cluster up

.PHONY: cluster-down
cluster-down: ## Stop the local Kubernetes control plane.
	$(PY) -m devstack cluster down

##@ Build

.PHONY: deps
deps: ## Install the Debian packages the tests need (redis-server, prometheus, shellcheck).
	hack/deps.sh

.PHONY: venv
venv: ## Make the locked virtualenv (cached outside the checkout).
	@echo $(VENV)

.PHONY: tools
tools: ## Build kube-apiserver, etcd, kwok, helm, ... into the cache (slow the first time).
	hack/tools/install.sh

.PHONY: images
images: ## Build the two container images, the Dockerfile's targets (needs Docker): TAG=dev by default.
	for service in api controller; do \
	  docker build --target "$$service" -t "train-conductor-$$service:$(or $(TAG),dev)" .; \
	done

.PHONY: images-podman
images-podman: deps ## Build the two images without Docker (podman on a Debian base; needs root): TAG=dev by default.
	TAG=$(or $(TAG),dev) hack/images.sh

.PHONY: proto
proto: ## Generate the Python code of proto/ (with .pyi types).
	PYTHON=$(PY) hack/gen-proto.sh

.PHONY: lock
lock: ## Re-lock the Python dependencies from requirements.in.
	# Locked for the oldest Python 3.11 we run on (Debian bookworm's, in the
	# images), so that its extra needs (async-timeout before 3.11.3) are in.
	$(VENV)/bin/uv pip compile requirements.in -o requirements.lock --generate-hashes -q --python-version 3.11.2
	$(VENV)/bin/uv pip compile hack/tools/python/checkov.in -o hack/tools/python/checkov.lock --generate-hashes -q --python-version 3.11.2

##@ Check

.PHONY: lint
lint: deps ## ruff, mypy --strict, buf lint, generated-code check, shellcheck.
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	cd proto && $(VENV)/bin/buf lint
	PYTHON=$(PY) hack/gen-proto.sh --check
	shellcheck -x -P SCRIPTDIR hack/*.sh hack/tools/*.sh hack/tools/kubernetes/*.sh kind/*.sh .ci/run
	$(MAKE) --no-print-directory lint-chart

.PHONY: lint-chart
lint-chart: tools ## helm lint and template every ci/*-values.yaml; hadolint the Dockerfile.
	PATH="$(VENV)/bin:$$PATH" hack/lint-chart.sh

.PHONY: test
test: deps tools lint ## Run every test: unit, integration (real Redis), end to end (real control plane).
	$(VENV)/bin/pytest

.PHONY: test-unit
test-unit: ## Run the unit tests only.
	$(VENV)/bin/pytest tests/unit

.PHONY: test-integration
test-integration: deps ## Run the tests against a real Redis and helm's renders of the chart (no Kubernetes).
	hack/tools/install.sh helm
	$(VENV)/bin/pytest tests/unit tests/integration

.PHONY: test-explore
test-explore: deps ## Run the property tests on newly drawn requests (make test draws the same ones every run).
	TC_EXPLORE=1 $(VENV)/bin/pytest tests/property

.PHONY: test-e2e
test-e2e: deps tools ## Run the end-to-end tests against the real control plane.
	$(VENV)/bin/pytest tests/e2e

.PHONY: bench
bench: deps tools ## Run the benchmarks; prints figures and ratios, writes build/bench/*.json.
	@# Each runs even when one before misses a target; the exit status says if any did.
	api=0; progress=0; controller=0; multinode=0; queues=0; logs=0; \
	  $(PY) -m bench.api || api=$$?; \
	  $(PY) -m bench.progress || progress=$$?; \
	  $(PY) -m bench.controller || controller=$$?; \
	  $(PY) -m bench.multinode || multinode=$$?; \
	  $(PY) -m bench.queues || queues=$$?; \
	  $(PY) -m bench.logs || logs=$$?; \
	  exit $$((api || progress || controller || multinode || queues || logs))

.PHONY: bench-scale
bench-scale: deps ## Redis with 1,000,000 finished and 10,000 active trainings: memory, list/get p99, resync, retention (about 20 minutes, 4 GB).
	$(PY) -m bench.scale $(BENCH_SCALE_ARGS)

##@ kind (needs Docker)

.PHONY: kind-e2e
kind-e2e: ## Create a kind cluster, load the images, install the chart, run the e2e tests.
	kind/e2e.sh
