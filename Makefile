# The two commands that matter: `make run` and `make test`. Both install what they need
# (a venv from requirements.lock) and start the local stack (PostgreSQL + S3 API) first.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.9
VENV := .venv
ENV := source scripts/airflow_env.sh &&

DATA ?=
START ?=
END ?=
# make bench: SCALE=full|small, QUICK=1 (tiny data, 1 run), RUNS=n, BACKFILL=0 to skip the
# Airflow backfills (dev/bench/backfill.py), MAX_ACTIVE_RUNS=default,1 for the DAG as written
# and/or copies with that max_active_runs (default: both), BENCH_ARGS for the staging part
# (python -m dev.bench.bench_staging --help), BACKFILL_ARGS for the backfills' (--help).
SCALE ?= full
QUICK ?=
RUNS ?=
BACKFILL ?= $(if $(QUICK),0,1)
MAX_ACTIVE_RUNS ?=
BENCH_ARGS ?=
BACKFILL_ARGS ?=

.PHONY: help venv stack airflow-db airflow browser run test lint format stop clean bench

help:
	@echo "make run    run sparkify_etl end to end on the local stack (DATA=, START=, END=)"
	@echo "make test   lint, then every test (starts the stack)"
	@echo "make airflow  Airflow's UI (webserver + scheduler) on http://127.0.0.1:8080, admin/admin"
	@echo "make bench  staging benchmark, 20-30 min (SCALE=full|small, QUICK=1, RUNS=, BACKFILL=0)"
	@echo "make stop   stop Airflow, the local PostgreSQL and S3 API"

# Recompile requirements.lock from requirements-dev.txt (which includes requirements.txt).
# requirements-overrides.txt replaces astro-sdk-python 1.9.0's stale Flask-Session<0.6 cap
# with what Airflow asks for (see its comments). The existing lock serves as preferences, so
# only what the inputs force changes; `make lock UPGRADE=1` re-resolves to the newest.
.PHONY: lock
lock: venv
	$(VENV)/bin/uv pip compile -q requirements-dev.txt --override requirements-overrides.txt \
		--python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
		$(if $(UPGRADE),--upgrade) -o requirements.lock

venv: $(VENV)/.installed

# uv installs the lock in seconds (pip takes ~70 s); `pip sync` makes the venv exactly the lock.
# --compile-bytecode: with PYTHONDONTWRITEBYTECODE set (as on these machines) every Airflow
# process would otherwise compile its ~2,500 imported modules from source (~4.5 s each start).
$(VENV)/.installed: requirements.lock
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/python -m pip install -q --disable-pip-version-check "uv==$(UV_VERSION)"
	$(VENV)/bin/uv pip sync -q --compile-bytecode --python $(VENV)/bin/python requirements.lock
	@touch $@

stack: venv
	@$(ENV) python -m dev.local_stack.stack up

# Airflow's metadata DB on the local PostgreSQL, as the Astro CLI runs it (database
# airflow_meta, owner sparkify; SQLite would allow one task at a time): created when
# missing, migrated when behind (log: .local/airflow/migrate.log), airflow_settings.yaml
# applied. See dev/local_stack/airflow_metadata.py.
airflow-db: stack
	@$(ENV) python -m dev.local_stack.airflow_metadata setup

# Webserver + scheduler in the background (logs, PID files in .local/airflow) on that DB with
# the LocalExecutor: the scheduler runs tasks in parallel. admin/admin is a
# local-development account only. `make stop` stops them.
airflow: stack airflow-db
	@$(ENV) python -m dev.local_stack.airflow_servers start

# The backfill runs on the same metadata DB (the runs show in `make airflow`), the month's
# runs all at once (the DAG's max_active_runs), each scheduling pass queueing every ready
# task; with the DebugExecutor: measured faster here than the LocalExecutor
# (dev/bench/README.md); BACKFILL_EXECUTOR=LocalExecutor picks that one.
BACKFILL_EXECUTOR ?=
run: stack airflow-db
	@$(ENV) python -m dev.local_stack.run_pipeline \
		$(if $(DATA),--data "$(DATA)") $(if $(START),--start $(START)) $(if $(END),--end $(END)) \
		$(if $(BACKFILL_EXECUTOR),--executor $(BACKFILL_EXECUTOR))

# Issue 3's staging benchmark and issue 11's parallel backfill: results in
# dev/bench/results/latest.json (see dev/bench/README.md).
bench: stack
	@$(ENV) python -m dev.bench.bench_staging --scale $(SCALE) $(if $(QUICK),--quick) \
		$(if $(RUNS),--runs $(RUNS)) $(BENCH_ARGS)
	@$(if $(filter 1 yes true,$(BACKFILL)),$(ENV) python -m dev.bench.backfill \
		$(if $(MAX_ACTIVE_RUNS),--max-active-runs $(MAX_ACTIVE_RUNS)) $(BACKFILL_ARGS),true)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Debian's Chromium for tests/browser (Playwright drives it; nothing is downloaded).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" != 0 ] || ! command -v apt-get > /dev/null; then \
			echo "Chromium is missing: run \`apt-get install chromium\` as root (Debian/Ubuntu)" >&2; \
			exit 1; \
		fi; \
		echo "Installing Chromium from Debian's packages ..."; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi

test: lint stack browser
	@$(ENV) SPARKIFY_REQUIRE_STACK=1 python -m pytest
	@$(MAKE) --no-print-directory astro-pytest astro-parse

# `astro dev pytest` / `astro dev parse` reproduced without Docker (dev/astro_cli/astro_dev.py):
# the build context of .dockerignore plus dags tests plugins include .astro in a temporary
# /usr/local/airflow, only the image's ENV (none of this Makefile's), the venv's pytest.
# ASTRO_ARGS are pytest's (as `astro dev pytest --args`).
ASTRO_ARGS ?=
.PHONY: astro-pytest astro-parse
astro-pytest: venv
	@$(VENV)/bin/python -m dev.astro_cli.astro_dev pytest $(if $(ASTRO_ARGS),-- $(ASTRO_ARGS))

astro-parse: venv
	@$(VENV)/bin/python -m dev.astro_cli.astro_dev parse

stop:
	@if [ -x $(VENV)/bin/python ]; then \
		$(ENV) python -m dev.local_stack.airflow_servers stop; \
		$(VENV)/bin/python -m dev.local_stack.stack down; \
	fi

clean: stop
	rm -rf .local
