"""Shared fixtures: the local stack (skipped with a reason where it is not running)."""

from __future__ import annotations

import os

import pytest

from dev.local_stack.stack import HOST, PG_PORT, S3_PORT, port_open

STACK_HINT = (
    f"the local stack is not running (PostgreSQL on {HOST}:{PG_PORT}, S3 API on {HOST}:{S3_PORT}); "
    "`make test` starts it, or `python -m dev.local_stack.stack up`"
)

# astro-sdk's Table travels through XCom; outside the Makefile's environment, allow it here.
os.environ.setdefault("AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES", "airflow.* astro.*")


def stack_running() -> bool:
    return port_open(PG_PORT) and port_open(S3_PORT)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if stack_running():
        return
    skip = pytest.mark.skip(reason=STACK_HINT)
    for item in items:
        if "stack" in item.keywords or "e2e" in item.keywords:
            item.add_marker(skip)


def pytest_configure(config: pytest.Config) -> None:
    # `make test` starts the stack first: there a missing server is a failure, not a skip.
    if os.environ.get("SPARKIFY_REQUIRE_STACK") == "1" and not stack_running():
        raise pytest.UsageError(STACK_HINT)
