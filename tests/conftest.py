"""Shared test setup: the local stack, and running inside the image (`astro dev pytest`).

Two places run this suite:

* a checkout (``make test``, plain ``pytest``): ``dev/`` is there; tests marked
  ``stack``/``e2e`` skip with a reason when the local stack is not running, unless
  ``SPARKIFY_REQUIRE_STACK=1`` (``make test`` starts it first) turns that into an error;
* the project image (``astro dev pytest``, reproduced by ``make astro-pytest``):
  ``.dockerignore`` keeps ``dev/`` (the local stack's tooling, the sample generator, the
  benchmark) and the development packages (moto, playwright) out. There a test module
  that imports one of them is skipped at collection, naming what is missing, and every
  ``stack``/``e2e`` test is skipped: the image has no local stack, even when one happens
  to listen on this machine's loopback.
"""

from __future__ import annotations

import importlib.abc
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
IN_CHECKOUT = (ROOT / "dev" / "__init__.py").is_file()

IMAGE_HINT = (
    "not in the image: .dockerignore keeps dev/ (the local stack, the sample generator, the "
    "benchmark) out, so tests that need the local stack run in a checkout (`make test`)"
)
# Top-level modules a test may import that only a checkout has, and why.
CHECKOUT_ONLY = {
    "dev": "dev/ is " + IMAGE_HINT,
    "moto": "moto (requirements-dev.txt) is " + IMAGE_HINT,
    "playwright": "playwright (requirements-dev.txt) is " + IMAGE_HINT,
}

# astro-sdk's Table travels through XCom: outside the Makefile's environment (and the
# image's, whose Dockerfile sets it), allow it here.
os.environ.setdefault("AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES", "airflow.* astro.*")


class _SkipWhatTheImageLacks(importlib.abc.MetaPathFinder):
    """Turns ``import dev`` (moto, playwright) into a module-level skip where it is missing.

    Asks the other finders first: a module that exists imports as usual. A namespace
    package does not count: pytest puts ``tests/`` on sys.path, where ``tests/dev/``
    would otherwise pass for ``dev``.
    """

    def find_spec(self, name, path=None, target=None):
        if name not in CHECKOUT_ONLY:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            try:
                spec = finder.find_spec(name, path, target)
            except ModuleNotFoundError:
                break  # a finder that says "not here" ends the search, as in the import system
            if spec is None:
                continue
            if spec.origin is None and spec.submodule_search_locations is not None:
                break  # only a namespace package, e.g. tests/dev/ (on sys.path as "dev")
            return spec
        raise pytest.skip.Exception(CHECKOUT_ONLY[name], allow_module_level=True)


if not IN_CHECKOUT:
    sys.meta_path.insert(0, _SkipWhatTheImageLacks())


def stack_hint() -> str:
    if not IN_CHECKOUT:
        return "the local stack is " + IMAGE_HINT
    from dev.local_stack.stack import HOST, PG_PORT, S3_PORT

    return (
        f"the local stack is not running (PostgreSQL on {HOST}:{PG_PORT}, S3 API on "
        f"{HOST}:{S3_PORT}); `make test` starts it, or `python -m dev.local_stack.stack up`"
    )


def stack_running() -> bool:
    if not IN_CHECKOUT:
        return False
    from dev.local_stack.stack import PG_PORT, S3_PORT, port_open

    return port_open(PG_PORT) and port_open(S3_PORT)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if stack_running():
        return
    skip = pytest.mark.skip(reason=stack_hint())
    for item in items:
        if "stack" in item.keywords or "e2e" in item.keywords:
            item.add_marker(skip)


def pytest_configure(config: pytest.Config) -> None:
    # `make test` starts the stack first: there a missing server is a failure, not a skip.
    if os.environ.get("SPARKIFY_REQUIRE_STACK") == "1" and not stack_running():
        raise pytest.UsageError(stack_hint())
