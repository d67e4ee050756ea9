"""Tests for dev.local_stack.processes: PID files, PID reuse, stopping process trees.

Every process here is a harmless one this test starts (``sleep``, small ``bash`` trees, a
Python HTTP server on a free loopback port); the fixture kills, by PID, whatever of them
still runs at the end.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

from dev.local_stack import processes
from dev.local_stack.stack import port_open


def spawn(argv: list[str], home: Path, name: str, started: list, **kwargs) -> processes.PidRecord:
    record = processes.spawn(argv, home / f"{name}.pid", home / f"{name}.log", **kwargs)
    started.append(psutil.Process(record.pid))
    return record


def tree_of(pid: int, expected: int, timeout: float = 10) -> list[psutil.Process]:
    """The descendants of ``pid`` once there are ``expected`` of them."""
    deadline = time.monotonic() + timeout
    while True:
        children = psutil.Process(pid).children(recursive=True)
        if len(children) >= expected or time.monotonic() > deadline:
            return children
        time.sleep(0.05)


def alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def http_server(port: int) -> list[str]:
    return [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]


# --------------------------------------------------------------------------- PID files


def test_pid_file_round_trip_and_unreadable_files(tmp_path, started):
    record = spawn(["sleep", "60"], tmp_path, "dummy", started)
    document = json.loads((tmp_path / "dummy.pid").read_text())
    assert document["pid"] == record.pid and document["port"] is None
    assert document["create_time"] == psutil.Process(record.pid).create_time()
    assert processes.read_pid_file(tmp_path / "dummy.pid") == record
    assert processes.process_of(record).pid == record.pid

    assert processes.read_pid_file(tmp_path / "missing.pid") is None
    (tmp_path / "garbage.pid").write_text("12 not json")
    assert processes.read_pid_file(tmp_path / "garbage.pid") is None
    (tmp_path / "old.pid").write_text(f"{record.pid}\n")  # a bare PID is not trusted
    assert processes.read_pid_file(tmp_path / "old.pid") is None
    assert processes.process_of(None) is None


def test_our_server_is_recognised_and_stopped(tmp_path, started):
    port = free_port()
    record = spawn(http_server(port), tmp_path, "web", started, port=port)
    wait_until(lambda: port_open(port))
    assert processes.running_record(tmp_path / "web.pid") == record
    assert record.port == port

    assert processes.stop_recorded(tmp_path / "web.pid", timeout=10) is True
    assert not alive(started[0])
    assert not port_open(port)
    assert not (tmp_path / "web.pid").exists()


def test_a_stale_pid_file_is_cleared(tmp_path, started):
    record = spawn(["sleep", "0.1"], tmp_path, "dummy", started)
    psutil.Process(record.pid).wait(timeout=10)
    assert processes.process_of(record) is None
    assert processes.running_record(tmp_path / "dummy.pid") is None
    assert not (tmp_path / "dummy.pid").exists()
    assert processes.stop_recorded(tmp_path / "dummy.pid") is False  # nothing to stop


def test_a_reused_pid_is_never_signalled(tmp_path, started):
    """Same PID, other start time: another process now; the record is dropped, not killed."""
    port = free_port()
    record = spawn(http_server(port), tmp_path, "web", started, port=port)
    wait_until(lambda: port_open(port))
    impostor = processes.PidRecord(record.pid, record.create_time - 100, port)
    (tmp_path / "web.pid").write_text(impostor.to_json())
    assert processes.process_of(impostor) is None
    assert processes.running_record(tmp_path / "web.pid") is None  # treated as stale ...
    assert not (tmp_path / "web.pid").exists()  # ... and cleared
    (tmp_path / "web.pid").write_text(impostor.to_json())
    assert processes.stop_recorded(tmp_path / "web.pid", timeout=1) is False
    assert not (tmp_path / "web.pid").exists()
    assert alive(started[0]) and port_open(port)  # the unrelated process is untouched


# --------------------------------------------------------------------------- command lines


def test_process_running_matches_a_run_of_the_command_line(started):
    process = subprocess.Popen(["sleep", "61"])
    started.append(psutil.Process(process.pid))
    wait_until(lambda: started[0].cmdline() == ["sleep", "61"])  # exec'd
    assert processes.process_running(process.pid, ["sleep", "61"]).pid == process.pid
    assert processes.process_running(process.pid, ["61"]) is not None
    assert processes.process_running(process.pid, ["sleep", "60"]) is None
    assert processes.process_running(process.pid, ["61", "sleep"]) is None
    assert processes.process_running(process.pid, []) is None
    assert processes.process_running(None, ["sleep"]) is None
    process.kill()
    process.wait()
    assert processes.process_running(process.pid, ["sleep", "61"]) is None


def test_a_bare_pid_file_is_adopted_only_for_our_command_line(tmp_path, started):
    port = free_port()
    command = http_server(port)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started.append(psutil.Process(process.pid))
    wait_until(lambda: port_open(port))
    path = tmp_path / "old.pid"

    path.write_text(f"{process.pid}\n")
    assert processes.adopt_bare_pid_file(path, ["moto_server", "-p", str(port)]) is None
    assert path.read_text() == f"{process.pid}\n"  # not ours: left for running_record ...
    assert processes.running_record(path) is None  # ... which clears it
    assert not path.exists() and alive(started[0])

    path.write_text(f"{process.pid}\n")
    record = processes.adopt_bare_pid_file(path, command[1:], port)
    assert record is not None and (record.pid, record.port) == (process.pid, port)
    assert processes.read_pid_file(path) == record  # upgraded to a full record
    assert processes.running_record(path) == record
    assert processes.adopt_bare_pid_file(path, command[1:], port) is None  # nothing bare now
    assert processes.adopt_bare_pid_file(tmp_path / "missing.pid", command) is None


# --------------------------------------------------------------------------- stopping


def test_stop_terminates_the_children_and_then_the_parent(tmp_path, started):
    record = spawn(["bash", "-c", "sleep 60 & sleep 60 & wait"], tmp_path, "dummy", started)
    family = [started[0], *tree_of(record.pid, 2)]
    assert len(family) == 3
    began = time.monotonic()
    assert processes.stop_recorded(tmp_path / "dummy.pid", timeout=10) is True
    assert time.monotonic() - began < 5  # SIGTERM sufficed
    assert not any(alive(p) for p in family)
    assert not (tmp_path / "dummy.pid").exists()
    assert processes.stop_recorded(tmp_path / "dummy.pid") is False  # nothing left to stop


def test_stop_kills_what_ignores_sigterm(tmp_path, started):
    # An ignored signal stays ignored across exec: bash and its sleep both ignore SIGTERM.
    record = spawn(["bash", "-c", "trap '' TERM; sleep 60 & wait"], tmp_path, "dummy", started)
    family = [started[0], *tree_of(record.pid, 1)]
    assert processes.stop_recorded(tmp_path / "dummy.pid", timeout=1) is True
    assert not any(alive(p) for p in family)


# A parent that stops its child itself on SIGINT, like PostgreSQL's postmaster.
POSTMASTER_LIKE = """
import signal, subprocess, sys
child = subprocess.Popen(["sleep", "60"])
def shutdown(signum, frame):
    print("fast shutdown", flush=True)
    child.terminate()
    child.wait()
    sys.exit(0)
signal.signal(signal.SIGINT, shutdown)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
signal.pause()
"""


def test_stop_process_can_signal_only_the_parent(tmp_path, started):
    record = spawn([sys.executable, "-c", POSTMASTER_LIKE], tmp_path, "pm", started)
    wait_until(lambda: "ready" in (tmp_path / "pm.log").read_text())
    family = [started[0], *tree_of(record.pid, 1)]
    began = time.monotonic()
    processes.stop_process(started[0], timeout=10, first_signal=signal.SIGINT, children_first=False)
    assert time.monotonic() - began < 5  # the parent's own shutdown, no SIGKILL needed
    assert not any(alive(p) for p in family)
    assert "fast shutdown" in (tmp_path / "pm.log").read_text()


def test_stop_process_kills_the_children_of_a_parent_that_does_not_stop(tmp_path, started):
    record = spawn(["bash", "-c", "trap '' INT; sleep 60 & wait"], tmp_path, "dummy", started)
    family = [started[0], *tree_of(record.pid, 1)]
    processes.stop_process(started[0], timeout=1, first_signal=signal.SIGINT, children_first=False)
    assert not any(alive(p) for p in family)


def test_spawn_runs_in_its_own_session_with_output_in_the_log(tmp_path, started):
    record = spawn(
        ["bash", "-c", 'echo "started in $PWD as $SPARKIFY_PROBE"; sleep 60'],
        tmp_path,
        "dummy",
        started,
        env={**os.environ, "SPARKIFY_PROBE": "probe"},
        cwd=tmp_path,
    )
    assert os.getsid(record.pid) == record.pid  # Ctrl-C in the terminal does not reach it
    wait_until(lambda: "started" in (tmp_path / "dummy.log").read_text())
    assert f"started in {tmp_path} as probe" in (tmp_path / "dummy.log").read_text()
