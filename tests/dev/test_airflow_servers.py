"""Tests for dev.local_stack.airflow_servers that need no Airflow server.

The servers are found and stopped through their PID files in ``AIRFLOW_HOME``, checked on
real, harmless ``sleep`` processes this test starts and always stops. How PID files guard
against PID reuse and how process trees are stopped is tested in ``test_processes.py``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from dev.local_stack import airflow_servers as servers
from dev.local_stack import processes
from dev.local_stack.stack import PROJECT_ROOT


def spawn(argv: list[str], home: Path, name: str, started: list) -> processes.PidRecord:
    record = processes.spawn(argv, home / f"{name}.pid", home / f"{name}.log")
    started.append(psutil.Process(record.pid))
    return record


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


# --------------------------------------------------------------------------- servers


def test_status_and_stop_follow_the_pid_files_in_home(tmp_path, started):
    assert [(s.name, s.running) for s in servers.status(tmp_path)] == [
        ("webserver", False),
        ("scheduler", False),
    ]
    assert servers.stop(tmp_path) == []

    web = processes.spawn(
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


# --------------------------------------------------------------------------- make airflow


def test_make_airflow_runs_the_local_executor_on_the_postgresql_metadata_db(tmp_path):
    from dev.local_stack.airflow_metadata import sql_alchemy_conn

    env = servers.make_airflow_environment({"AIRFLOW_HOME": str(tmp_path)})
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == sql_alchemy_conn("airflow_meta")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__CORE__PARALLELISM"] == str(servers.LOCAL_PARALLELISM)
    # What start() adds keeps them.
    full = servers.server_environment(env, port=8123)
    assert full["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert full["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == sql_alchemy_conn("airflow_meta")


def test_a_private_home_keeps_its_own_database_and_executor(tmp_path):
    """As the browser test starts its servers: SQLite in its home, SequentialExecutor."""
    given = {
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW__CORE__EXECUTOR": "SequentialExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path}/airflow.db",
    }
    env = servers.make_airflow_environment(given)
    assert {k: env[k] for k in given} == given
    assert "AIRFLOW__CORE__PARALLELISM" not in env
    # start() uses the environment it is given as it is: no metadata settings added.
    plain = servers.server_environment({"AIRFLOW_HOME": str(tmp_path)}, port=8123)
    assert "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" not in plain
    assert "AIRFLOW__CORE__EXECUTOR" not in plain
