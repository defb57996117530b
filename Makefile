# Everything a fresh machine needs is installed by these targets; caches live under
# ~/.cache/embedding-operator so only the first run on a machine pays for builds.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
export PYTHONUNBUFFERED := 1

.PHONY: help venv infinity-venv helm-bin testcluster-bin cluster cluster-down aicore aicore-down \
	podman images system-deps node-deps argocd demo up down demo-kserve up-kserve down-kserve \
	test test-fast chaos lint fmt crds generate

help:
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

$(VENV)/.stamp: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e ".[dev]"
	touch $@

venv: $(VENV)/.stamp ## Python environment for the operator, the local AI Core and the tests

infinity-venv: ## Separate, pinned environment for the infinity embedding server (torch inside)
	scripts/ensure-infinity-venv.sh

helm-bin: venv ## Build (or reuse the cached) pinned Helm from the Go module proxy
	$(PY) -m testcluster.gotool helm

testcluster-bin: venv ## Build (or reuse the cached) etcd + kube-apiserver + controller-manager binary
	$(PY) -m testcluster build

cluster: venv ## Start the local control plane; kubeconfig at .local/kubeconfig
	$(PY) -m testcluster up

cluster-down: venv ## Stop the local control plane and remove its state
	$(PY) -m testcluster down

aicore: venv infinity-venv ## Start the local AI Core; service key at .local/aicore-service-key.json
	$(PY) -m aicore_local up

aicore-down: venv ## Stop the local AI Core and every process it started
	$(PY) -m aicore_local down

podman: ## Install podman/buildah and the locally made Debian base image
	scripts/ensure-podman.sh

images: podman ## Build the serving image and the operator image with podman
	scripts/build-images.sh

node-deps: ## Debian packages the local node needs (runc, CNI plugins, iproute2)
	scripts/ensure-node-deps.sh

system-deps: node-deps ## Debian packages the tests use (lua5.1 and redis-server for Argo CD, node, podman)
	scripts/ensure-lua.sh
	scripts/ensure-redis.sh
	scripts/ensure-node.sh
	scripts/ensure-podman.sh

argocd: venv ## Build (or reuse the cached) Argo CD binary for the GitOps tests (4-5 min cold)
	$(PY) -m testcluster.argocd build

demo: venv testcluster-bin infinity-venv ## The main job end to end on the local sandbox, then clean up
	$(PY) scripts/sandbox.py demo

up: venv testcluster-bin infinity-venv ## Like demo, but leave cluster, AI Core and operator running
	$(PY) scripts/sandbox.py up

down: venv ## Stop what `make up` started
	$(PY) scripts/sandbox.py down

demo-kserve: venv testcluster-bin infinity-venv system-deps ## The KServe job end to end on a real node with KServe's controller, then clean up
	$(PY) scripts/kserve_sandbox.py demo

up-kserve: venv testcluster-bin infinity-venv system-deps ## Like demo-kserve, but leave node, KServe, operator and model running
	$(PY) scripts/kserve_sandbox.py up

down-kserve: venv ## Stop what `make up-kserve` started
	$(PY) scripts/kserve_sandbox.py down

crds generate: venv ## Regenerate crds/ and manifests/aicore/ from the Python sources of truth
	$(PY) -m embedding_operator.cli generate

lint: venv ## ruff + mypy + the import contracts ([tool.importlinter] in pyproject.toml)
	$(VENV)/bin/ruff check operator tests
	$(VENV)/bin/ruff format --check operator tests
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache --no-logo

fmt: venv
	$(VENV)/bin/ruff format operator tests
	$(VENV)/bin/ruff check --fix operator tests

test: venv testcluster-bin argocd infinity-venv system-deps ## The whole suite (starts its own cluster and AI Core)
	$(PY) -m pytest -ra $(PYTEST_ARGS)

chaos: venv testcluster-bin ## The fault suite with its long cases; figures in .local/chaos-results.jsonl
	$(PY) -m pytest -ra -s tests/chaos --chaos $(PYTEST_ARGS)

test-fast: venv ## The pure tier: tests/unit (no network; tests/conftest.py enforces the tiers)
	$(PY) -m pytest -ra tests/unit $(PYTEST_ARGS)
