"""Tests for dev.local_stack.airflow_servers that need no Airflow server.

Process handling is checked on real, harmless processes this test starts (``sleep`` and
small ``bash`` trees) and always stops.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from dev.local_stack import airflow_servers as servers
from dev.local_stack.stack import PROJECT_ROOT


@pytest.fixture
def started() -> Iterator[list[psutil.Process]]:
    """Processes a test starts; whatever still runs at the end is killed."""
    processes: list[psutil.Process] = []
    yield processes
    for process in processes:
        try:
            family = [*process.children(recursive=True), process]
        except psutil.Error:
            continue
        for member in family:
            with contextlib.suppress(psutil.Error):
                member.kill()
        psutil.wait_procs(family, timeout=5)


def spawn(argv: list[str], home: Path, name: str, started: list) -> servers.PidRecord:
    record = servers.spawn(argv, home / f"{name}.pid", home / f"{name}.log")
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


# --------------------------------------------------------------------------- commands


def test_webserver_command_binds_loopback_on_the_port_with_its_pid_file_in_home(tmp_path):
    argv = servers.webserver_command(tmp_path, 8123)
    assert argv[0] == str(Path(sys.executable).parent / "airflow")
    assert argv[1] == "webserver"
    assert argv[argv.index("--hostname") + 1] == "127.0.0.1"
    assert argv[argv.index("--port") + 1] == "8123"
    assert argv[argv.index("--pid") + 1] == str(tmp_path / "airflow-webserver.pid")


def test_scheduler_command():
    assert servers.scheduler_command() == [
        str(Path(sys.executable).parent / "airflow"),
        "scheduler",
    ]


def test_server_environment_puts_the_venv_on_path_and_the_project_on_pythonpath(tmp_path):
    env = servers.server_environment(
        {"PATH": "/usr/bin:/bin", "AIRFLOW_HOME": str(tmp_path)}, port=8123
    )
    assert env["PATH"].split(os.pathsep) == [str(servers.VENV_BIN), "/usr/bin", "/bin"]
    assert env["PYTHONPATH"].split(os.pathsep) == [str(PROJECT_ROOT / "include")]
    assert env["AIRFLOW_HOME"] == str(tmp_path)
    assert env["AIRFLOW__WEBSERVER__WEB_SERVER_PORT"] == "8123"
    assert env["AIRFLOW__WEBSERVER__BASE_URL"] == "http://127.0.0.1:8123"
    assert env["AIRFLOW__WEBSERVER__WORKERS"] == "2"
    assert env["GUNICORN_CMD_ARGS"] == "--no-control-socket"
    assert "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT" not in env


def test_server_environment_keeps_what_is_set_and_moves_the_log_server():
    given = {
        "PATH": f"{servers.VENV_BIN}:/usr/bin",
        "PYTHONPATH": f"/elsewhere:{PROJECT_ROOT}/include",
        "AIRFLOW__WEBSERVER__WORKERS": "4",
    }
    env = servers.server_environment(given, port=8123, log_server_port=8799)
    assert env["PATH"] == given["PATH"]
    assert env["PYTHONPATH"] == given["PYTHONPATH"]
    assert env["AIRFLOW__WEBSERVER__WORKERS"] == "4"
    assert env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] == "8799"
    assert given == {
        "PATH": f"{servers.VENV_BIN}:/usr/bin",
        "PYTHONPATH": f"/elsewhere:{PROJECT_ROOT}/include",
        "AIRFLOW__WEBSERVER__WORKERS": "4",
    }  # not modified in place


def test_airflow_home_comes_from_the_environment_else_the_state_dir(tmp_path):
    assert servers.airflow_home({"AIRFLOW_HOME": str(tmp_path)}) == tmp_path
    assert servers.airflow_home({}) == servers.STATE_DIR / "airflow"


def test_health_documents():
    healthy = {"metadatabase": {"status": "healthy"}, "scheduler": {"status": "healthy"}}
    assert servers.is_healthy(healthy)
    assert not servers.is_healthy({**healthy, "scheduler": {"status": "unhealthy"}})
    assert not servers.is_healthy({"metadatabase": {"status": "healthy"}, "scheduler": None})
    assert not servers.is_healthy(None)
    assert servers.health(free_port(), timeout=0.5) is None


def test_login_instructions_name_the_url_and_the_local_only_account(tmp_path):
    text = servers.login_instructions(8123, tmp_path)
    assert "http://127.0.0.1:8123" in text
    assert "admin / admin" in text and "local" in text
    assert str(tmp_path / "webserver.log") in text and "make stop" in text


# --------------------------------------------------------------------------- PID files


def test_pid_file_round_trip_and_unreadable_files(tmp_path, started):
    record = spawn(["sleep", "60"], tmp_path, "dummy", started)
    document = json.loads((tmp_path / "dummy.pid").read_text())
    assert document["pid"] == record.pid and document["port"] is None
    assert servers.read_pid_file(tmp_path / "dummy.pid") == record
    assert servers.process_of(record).pid == record.pid

    assert servers.read_pid_file(tmp_path / "missing.pid") is None
    (tmp_path / "garbage.pid").write_text("12 not json")
    assert servers.read_pid_file(tmp_path / "garbage.pid") is None
    (tmp_path / "old.pid").write_text(f"{record.pid}\n")  # a bare PID is not trusted
    assert servers.read_pid_file(tmp_path / "old.pid") is None


def test_a_stale_pid_file_is_cleared(tmp_path, started):
    record = spawn(["sleep", "0.1"], tmp_path, "dummy", started)
    psutil.Process(record.pid).wait(timeout=10)
    assert servers.process_of(record) is None
    assert servers.running_record(tmp_path / "dummy.pid") is None
    assert not (tmp_path / "dummy.pid").exists()


def test_a_reused_pid_is_never_signalled(tmp_path, started):
    """Same PID, other start time: another process now; the record is dropped, not killed."""
    record = spawn(["sleep", "60"], tmp_path, "dummy", started)
    impostor = servers.PidRecord(record.pid, record.create_time - 100)
    (tmp_path / "dummy.pid").write_text(impostor.to_json())
    assert servers.process_of(impostor) is None
    assert servers.stop_recorded(tmp_path / "dummy.pid") is False
    assert not (tmp_path / "dummy.pid").exists()
    assert alive(started[0])


def test_stop_terminates_the_children_and_then_the_parent(tmp_path, started):
    record = spawn(["bash", "-c", "sleep 60 & sleep 60 & wait"], tmp_path, "dummy", started)
    family = [started[0], *tree_of(record.pid, 2)]
    assert len(family) == 3
    began = time.monotonic()
    assert servers.stop_recorded(tmp_path / "dummy.pid", timeout=10) is True
    assert time.monotonic() - began < 5  # SIGTERM sufficed
    assert not any(alive(p) for p in family)
    assert not (tmp_path / "dummy.pid").exists()
    assert servers.stop_recorded(tmp_path / "dummy.pid") is False  # nothing left to stop


def test_stop_kills_what_ignores_sigterm(tmp_path, started):
    # An ignored signal stays ignored across exec: bash and its sleep both ignore SIGTERM.
    record = spawn(["bash", "-c", "trap '' TERM; sleep 60 & wait"], tmp_path, "dummy", started)
    family = [started[0], *tree_of(record.pid, 1)]
    assert servers.stop_recorded(tmp_path / "dummy.pid", timeout=1) is True
    assert not any(alive(p) for p in family)


def test_spawn_runs_in_its_own_session_with_output_in_the_log(tmp_path, started):
    record = spawn(["bash", "-c", "echo started; sleep 60"], tmp_path, "dummy", started)
    assert os.getsid(record.pid) == record.pid  # Ctrl-C in the terminal does not reach it
    deadline = time.monotonic() + 10
    while "started" not in (tmp_path / "dummy.log").read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)


# --------------------------------------------------------------------------- servers


def test_status_and_stop_follow_the_pid_files_in_home(tmp_path, started):
    assert [(s.name, s.running) for s in servers.status(tmp_path)] == [
        ("webserver", False),
        ("scheduler", False),
    ]
    assert servers.stop(tmp_path) == []

    web = servers.spawn(
        ["sleep", "60"], tmp_path / "webserver.pid", tmp_path / "webserver.log", port=8123
    )
    started.append(psutil.Process(web.pid))
    scheduler = spawn(["sleep", "60"], tmp_path, "scheduler", started)
    by_name = {s.name: s for s in servers.status(tmp_path)}
    assert by_name["webserver"].running and by_name["webserver"].pid == web.pid
    assert by_name["webserver"].address == "http://127.0.0.1:8123"
    assert by_name["scheduler"].running and by_name["scheduler"].pid == scheduler.pid

    assert servers.stop(tmp_path) == ["scheduler", "webserver"]
    assert not any(alive(p) for p in started)
    assert not list(tmp_path.glob("*.pid"))


def test_start_reports_a_port_held_by_another_process_and_leaves_it_alone(tmp_path):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        env = {**os.environ, "AIRFLOW_HOME": str(tmp_path)}
        with pytest.raises(servers.AirflowServersError, match=f"port {port} is in use"):
            servers.start(env, port=port, admin=None, timeout=5)
        assert not list(tmp_path.glob("*.pid"))  # nothing was started
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass  # still listening


def test_cli_status_and_stop_without_servers(tmp_path):
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path)}
    command = [sys.executable, "-m", "dev.local_stack.airflow_servers"]
    status = subprocess.run(
        [*command, "status"], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert status.returncode == 0, status.stderr
    assert "webserver" in status.stdout and "stopped" in status.stdout
    stop = subprocess.run(
        [*command, "stop"], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert stop.returncode == 0 and "not running" in stop.stdout
