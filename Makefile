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

.PHONY: help venv stack airflow-db run test lint format stop clean

help:
	@echo "make run    run sparkify_etl end to end on the local stack (DATA=, START=, END=)"
	@echo "make test   lint, then every test (starts the stack)"
	@echo "make stop   stop the local PostgreSQL and S3 API"

venv: $(VENV)/.installed

# uv installs the lock in seconds (pip takes ~70 s); `pip sync` makes the venv exactly the lock.
$(VENV)/.installed: requirements.lock
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/python -m pip install -q --disable-pip-version-check "uv==$(UV_VERSION)"
	$(VENV)/bin/uv pip sync -q --python $(VENV)/bin/python requirements.lock
	@touch $@

stack: venv
	@$(ENV) python -m include.local_stack.stack up

# Airflow's metadata DB (SQLite under .local/airflow) plus airflow_settings.yaml.
airflow-db: venv
	@mkdir -p .local/airflow
	@$(ENV) airflow db migrate > .local/airflow/migrate.log 2>&1 \
		|| { tail -20 .local/airflow/migrate.log; exit 1; }
	@$(ENV) python -m include.local_stack.airflow_settings

run: stack airflow-db
	@$(ENV) python -m include.local_stack.run_pipeline \
		$(if $(DATA),--data "$(DATA)") $(if $(START),--start $(START)) $(if $(END),--end $(END))

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: lint stack
	@$(ENV) SPARKIFY_REQUIRE_STACK=1 python -m pytest

stop:
	@if [ -x $(VENV)/bin/python ]; then $(VENV)/bin/python -m include.local_stack.stack down; fi

clean: stop
	rm -rf .local
