# The commands the README and CI use, so local and CI runs are the same.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help run test lint format bench redis-cluster redis-sentinel clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@ $(VENV)/.runtime

run: $(VENV)/.runtime ## Migrate, seed the demo data once, start the server (SQLite + in-process broker unless configured)
	$(BIN)/python -m app migrate
	$(BIN)/python -m app seed --orders 300 --notifications 60 --quiet
	exec $(BIN)/python -m app serve

test: $(VENV)/.dev ## Run the whole test suite (REQUIRE_SERVICES=1 makes missing PostgreSQL/Redis fail)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev ## ruff (lint and format check), mypy --strict and the import contracts (import-linter)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

format: $(VENV)/.dev ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(VENV)/.dev ## Run the benchmarks (server on core 0, load on core 1); see docs/performance.md
	$(BIN)/python -m bench $(BENCH_ARGS)

redis-cluster: $(VENV)/.runtime ## A local Redis Cluster (3 masters, 3 replicas) on free ports; prints its REDIS_URL
	$(BIN)/python -m bench.redis_topology cluster

redis-sentinel: $(VENV)/.runtime ## A local master, replica and 3 sentinels on free ports; prints its REDIS_URL
	$(BIN)/python -m bench.redis_topology sentinel

clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
