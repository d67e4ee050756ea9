"""dev/bench/cpu.py: CPU time of processes, of a server's tree, and the machine's share."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from dev.bench.cpu import MachineCpu, process_cpu_seconds, tree_cpu_seconds

# A child that burns about this much CPU, then (optionally) waits on its stdin.
BURN_SECONDS = 0.3
_BURN = (
    "import sys, time\n"
    f"end = time.process_time() + {BURN_SECONDS}\n"
    "while time.process_time() < end: pass\n"
    "print('burnt', flush=True)\n"
    "if sys.argv[1:] == ['wait']: sys.stdin.read()\n"
)


def _burn_cpu(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_a_process_time_grows_with_the_work_it_does() -> None:
    before = process_cpu_seconds(os.getpid())
    _burn_cpu(0.2)
    after = process_cpu_seconds(os.getpid())
    assert before is not None and after is not None
    assert after - before >= 0.15


def test_an_ended_child_counts_only_when_asked_for() -> None:
    own_before = process_cpu_seconds(os.getpid())
    with_children_before = process_cpu_seconds(os.getpid(), reaped_children=True)
    subprocess.run([sys.executable, "-c", _BURN], check=True, capture_output=True)
    own_after = process_cpu_seconds(os.getpid())
    with_children_after = process_cpu_seconds(os.getpid(), reaped_children=True)
    assert with_children_after - with_children_before >= BURN_SECONDS * 0.8
    assert own_after - own_before < BURN_SECONDS / 2


def test_a_tree_counts_its_live_children() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _BURN, "wait"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "burnt"
        tree = tree_cpu_seconds(os.getpid())
        own = process_cpu_seconds(os.getpid(), reaped_children=True)
        assert tree is not None and own is not None
        assert tree - own >= BURN_SECONDS * 0.8
    finally:
        child.communicate("", timeout=10)


def test_a_gone_process_has_no_time() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert process_cpu_seconds(child.pid) is None
    assert tree_cpu_seconds(child.pid) is None


def test_the_machine_is_busy_while_this_process_works() -> None:
    before = MachineCpu.read()
    _burn_cpu(0.3)
    share = MachineCpu.read().busy_share_since(before)
    assert share is not None
    # one core of however many was busy at least most of the time, never more than all
    assert 0.8 / (os.cpu_count() or 1) <= share <= 1.0


def test_no_time_passed_has_no_share() -> None:
    reading = MachineCpu(busy=5.0, total=10.0)
    assert reading.busy_share_since(reading) is None


@pytest.fixture(autouse=True)
def _linux_only() -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("the CPU counters are read as Linux keeps them")
