"""Fixtures of the dev tooling's tests: processes they start are killed at the end, by PID."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psutil
import pytest


@pytest.fixture
def started() -> Iterator[list[psutil.Process]]:
    """Processes a test starts; whatever still runs at the end is killed."""
    running: list[psutil.Process] = []
    yield running
    for process in running:
        try:
            family = [*process.children(recursive=True), process]
        except psutil.Error:
            continue
        for member in family:
            with contextlib.suppress(psutil.Error):
                member.kill()
        psutil.wait_procs(family, timeout=5)
