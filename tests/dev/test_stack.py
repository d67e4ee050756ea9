"""Tests for dev.local_stack.stack's process handling, on a throwaway state dir and ports.

moto's server runs for real on a free loopback port with its PID file under ``tmp_path``;
PostgreSQL is stood in for by a harmless process whose command line names the throwaway
data directory, so ``pg_ctl`` and the shared stack on 8001/8002 are never touched. Every
process is one this test starts, killed by PID at the end if it still runs.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import psutil
import pytest

from dev.local_stack import processes, stack


@pytest.fixture
def local(tmp_path, monkeypatch):
    """A private state dir and free ports: what SPARKIFY_STATE_DIR/_PG_PORT/_S3_PORT set."""
    monkeypatch.setattr(stack, "STATE_DIR", tmp_path)
    monkeypatch.setattr(stack, "S3_PORT", free_port())
    monkeypatch.setattr(stack, "PG_PORT", free_port())
    monkeypatch.setattr(stack, "_pg_bin_dir", lambda: None)  # never pg_ctl a fake cluster
    return tmp_path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def start(argv: list[str], started: list) -> psutil.Process:
    popen = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    process = psutil.Process(popen.pid)
    started.append(process)
    deadline = time.monotonic() + 10
    while process.cmdline()[-len(argv) + 1 :] != argv[1:]:  # until it has exec'd
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return process


def wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 30
    while not stack.port_open(port):
        assert time.monotonic() < deadline, f"nothing listens on {port}"
        time.sleep(0.05)


# --------------------------------------------------------------------------- S3 API (moto)


def test_up_twice_reuses_the_s3_server_and_down_stops_it(local, started):
    first = stack.start_s3()
    started.append(psutil.Process(first.pid))
    assert first.running and first.address == f"http://127.0.0.1:{stack.S3_PORT}"
    document = json.loads((local / "s3" / "moto.pid").read_text())
    assert document["pid"] == first.pid and document["port"] == stack.S3_PORT
    assert document["create_time"] == started[0].create_time()

    assert stack.start_s3() == first  # reused, not started again
    assert stack.s3_status() == first

    stack.stop_s3()
    assert not alive(started[0])
    assert not stack.port_open(stack.S3_PORT)
    assert not (local / "s3" / "moto.pid").exists()
    assert not stack.s3_status().running
    stack.stop_s3()  # nothing left to stop


def test_a_stale_s3_pid_file_is_cleared(local, started):
    gone = subprocess.Popen(["true"])
    gone.wait(timeout=10)  # its PID names no process now
    pid_file = local / "s3" / "moto.pid"
    pid_file.parent.mkdir(parents=True)
    pid_file.write_text(processes.PidRecord(gone.pid, 1.0, stack.S3_PORT).to_json())
    assert not stack.s3_status().running
    assert not pid_file.exists()

    status = stack.start_s3()  # a stale file does not stop `up`
    started.append(psutil.Process(status.pid))
    assert status.running and status.pid != gone.pid
    stack.stop_s3()


def test_a_pid_reused_by_an_unrelated_process_is_stale_and_never_killed(local, started):
    unrelated = start(["sleep", "60"], started)
    pid_file = local / "s3" / "moto.pid"
    pid_file.parent.mkdir(parents=True)
    impostor = processes.PidRecord(unrelated.pid, unrelated.create_time() - 100, stack.S3_PORT)
    for content in (impostor.to_json(), f"{unrelated.pid}\n"):  # a record, a bare PID
        pid_file.write_text(content)
        assert not stack.s3_status().running
        assert not pid_file.exists()  # cleared
        pid_file.write_text(content)
        stack.stop_s3()
        assert not pid_file.exists()
        assert alive(unrelated)  # never signalled


def test_a_port_held_by_a_foreign_process_is_reported_never_killed(local, started):
    port = stack.S3_PORT
    foreign = start(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)], started
    )
    wait_for_port(port)
    with pytest.raises(stack.StackError, match=f"port {port} is in use by a process this project"):
        stack.start_s3()
    assert not (local / "s3" / "moto.pid").exists()
    stack.stop_s3()
    assert alive(foreign) and stack.port_open(port)


def test_a_moto_recorded_by_a_bare_pid_is_adopted_and_reused(local, started):
    """PID files of the stack's earlier format hold a bare PID: ours if the command is."""
    moto = start(stack._moto_command(), started)
    pid_file = local / "s3" / "moto.pid"
    pid_file.parent.mkdir(parents=True)
    pid_file.write_text(f"{moto.pid}\n")
    wait_for_port(stack.S3_PORT)

    assert stack.start_s3().pid == moto.pid  # reused
    assert processes.read_pid_file(pid_file) == processes.PidRecord(
        moto.pid, moto.create_time(), stack.S3_PORT
    )
    stack.stop_s3()
    assert not alive(moto)


# --------------------------------------------------------------------------- PostgreSQL


def fake_postmaster(data_dir, started) -> psutil.Process:
    """A process whose command line names ``-D data_dir`` (SIGINT ends it), with its lock file."""
    data_dir.mkdir(parents=True, exist_ok=True)
    process = start(
        [sys.executable, "-c", "import time; time.sleep(60)", "-D", str(data_dir)], started
    )
    (data_dir / "postmaster.pid").write_text(f"{process.pid}\n{data_dir}\n0\n{stack.PG_PORT}\n")
    return process


def test_our_postmaster_is_recognised_and_stopped_through_the_guarded_path(local, started):
    data_dir = stack._pg_data_dir()
    postmaster = fake_postmaster(data_dir, started)
    assert stack._postmaster(data_dir).pid == postmaster.pid
    assert not stack.postgres_status().running  # nothing answers on its port yet
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", stack.PG_PORT))
        listener.listen()
        assert stack.postgres_status() == stack.ServerStatus(
            "postgres", True, postmaster.pid, f"127.0.0.1:{stack.PG_PORT}"
        )
    assert stack._clear_stale_postmaster_pid(data_dir) is False  # a live one is kept

    stack.stop_postgres(timeout=10)  # no pg_ctl here: SIGINT, the fast shutdown
    assert not alive(postmaster)


def test_a_postmaster_pid_naming_another_process_is_stale_and_left_alone(local, started):
    data_dir = stack._pg_data_dir()
    other = fake_postmaster(local / "elsewhere" / "data", started)  # another cluster's
    unrelated = start(["sleep", "60"], started)
    data_dir.mkdir(parents=True)
    for pid in (other.pid, unrelated.pid):
        (data_dir / "postmaster.pid").write_text(f"{pid}\n{data_dir}\n0\n{stack.PG_PORT}\n")
        assert stack._postmaster(data_dir) is None
        assert not stack.postgres_status().running
        stack.stop_postgres(timeout=1)
        assert stack._clear_stale_postmaster_pid(data_dir) is True
        assert not (data_dir / "postmaster.pid").exists()
    assert alive(other) and alive(unrelated)
    assert stack._clear_stale_postmaster_pid(data_dir) is False  # no file, nothing to do


# --------------------------------------------------------------------------- CLI


def test_cli_status_on_a_throwaway_state_dir(tmp_path):
    env = {
        **os.environ,
        "SPARKIFY_STATE_DIR": str(tmp_path),
        "SPARKIFY_PG_PORT": str(free_port()),
        "SPARKIFY_S3_PORT": str(free_port()),
    }
    result = subprocess.run(
        [sys.executable, "-m", "dev.local_stack.stack", "status"],
        env=env,
        cwd=stack.PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["postgres", "s3"]
    assert all(line.endswith("stopped") for line in lines)
    assert not list(tmp_path.iterdir())  # status creates nothing
