"""Airflow's webserver and scheduler, natively, on the local stack: what ``make airflow`` runs.

Both servers run in the background with their logs and PID files in ``$AIRFLOW_HOME``
(``.local/airflow`` under ``scripts/airflow_env.sh``): ``webserver.log``/``.pid`` and
``scheduler.log``/``.pid``, kept by ``processes.py`` (as moto's): a PID file records the
process's start time as well, so a PID reused by an unrelated process is never mistaken
for ours (nor signalled).

``start`` is idempotent: a server that still runs is reused, a stale PID file is cleared,
and a port held by a process this project did not start is reported, never killed. It
creates or updates the admin user (``admin``/``admin``: local development only) and
returns once ``/health`` reports the metadata DB and the scheduler healthy. ``stop``
sends SIGTERM to a server's children (gunicorn's workers, the scheduler's DAG processor,
log server and task processes), then to the server itself, and SIGKILL to what is left.

``make airflow`` (the CLI's ``start``) runs them as the Astro CLI does: the metadata DB on
PostgreSQL (``airflow_meta`` on the local stack, set up by ``make airflow-db``, see
``airflow_metadata.py``) and the LocalExecutor, so the scheduler runs tasks in parallel,
each in a process forked from a worker. ``start()`` itself runs what its environment
says: a test passes a private ``AIRFLOW_HOME`` and executor (SQLite and the
SequentialExecutor, say) and gets exactly that. Task processes are found by name, so
the venv's ``bin`` must be on ``PATH`` (the server environment sees to it).

    python -m dev.local_stack.airflow_servers start [--port 8080] | stop | status
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from dev.local_stack.airflow_metadata import metadata_environment
from dev.local_stack.processes import read_pid_file, running_record, spawn, stop_recorded
from dev.local_stack.stack import (
    HOST,
    PROJECT_ROOT,
    STATE_DIR,
    ServerStatus,
    StackError,
    port_open,
)

DEFAULT_PORT = int(os.environ.get("SPARKIFY_AIRFLOW_PORT", "8080"))
# Local development only: the UI listens on loopback, the metadata DB is the local stack's.
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "admin"
SERVERS = ("webserver", "scheduler")
# Tasks the scheduler's LocalExecutor runs at a time.
LOCAL_PARALLELISM = 8
VENV_BIN = Path(sys.executable).parent
# What the image and the Astro CLI put on sys.path for the DAGs: the `sparkify` package.
RUNTIME_PATH = PROJECT_ROOT / "include"


class AirflowServersError(StackError):
    """A server could not be started or reached; the message says what to do."""


# --------------------------------------------------------------------------- the servers


def airflow_home(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("AIRFLOW_HOME") or STATE_DIR / "airflow")


def pid_file(home: Path, server: str) -> Path:
    return home / f"{server}.pid"


def log_file(home: Path, server: str) -> Path:
    return home / f"{server}.log"


def airflow_executable() -> str:
    """The venv's ``airflow`` script (next to this interpreter)."""
    candidate = VENV_BIN / "airflow"
    return str(candidate) if candidate.exists() else "airflow"


def webserver_command(home: Path, port: int, host: str = HOST) -> list[str]:
    # The gunicorn master's PID file (Airflow refuses to start when a live one exists).
    gunicorn_pid = home / "airflow-webserver.pid"
    return [
        airflow_executable(), "webserver", "--hostname", host, "--port", str(port),
        "--pid", str(gunicorn_pid),
    ]  # fmt: skip


def scheduler_command() -> list[str]:
    return [airflow_executable(), "scheduler"]


def server_environment(
    env: Mapping[str, str] | None = None,
    port: int = DEFAULT_PORT,
    log_server_port: int | None = None,
) -> dict[str, str]:
    """The servers' environment: ``env`` plus what they need to find each other.

    The venv's ``bin`` goes first on ``PATH`` (the executor runs ``airflow tasks run`` by
    name) and ``include/`` on ``PYTHONPATH`` (as in the image). ``log_server_port`` moves
    the scheduler's task-log server off its default 8793, for a second Airflow here.
    """
    result = dict(os.environ if env is None else env)
    path = result.get("PATH", "").split(os.pathsep)
    if str(VENV_BIN) not in path:
        result["PATH"] = os.pathsep.join([str(VENV_BIN), *filter(None, path)])
    python_path = result.get("PYTHONPATH", "").split(os.pathsep)
    if str(RUNTIME_PATH) not in python_path:
        result["PYTHONPATH"] = os.pathsep.join([str(RUNTIME_PATH), *filter(None, python_path)])
    result.setdefault("AIRFLOW_HOME", str(airflow_home(result)))
    result["AIRFLOW__WEBSERVER__WEB_SERVER_PORT"] = str(port)
    result["AIRFLOW__WEBSERVER__BASE_URL"] = f"http://{HOST}:{port}"
    # Two gunicorn workers are plenty for one developer (the default of 4 costs ~1 GB).
    result.setdefault("AIRFLOW__WEBSERVER__WORKERS", "2")
    # gunicorn >= 25 opens a control socket at ~/.gunicorn/gunicorn.ctl, one path shared by
    # every gunicorn of the user: the webserver does without.
    result.setdefault("GUNICORN_CMD_ARGS", "--no-control-socket")
    if log_server_port is not None:
        result["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(log_server_port)
    return result


def make_airflow_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """What ``make airflow`` starts the servers with: ``env`` (default: this process's)
    on the PostgreSQL metadata DB with the LocalExecutor, unless ``env`` names others."""
    result = metadata_environment(env)
    if result.get("AIRFLOW__CORE__EXECUTOR") == "LocalExecutor":
        # The LocalExecutor starts this many worker processes up front (Airflow's 32 is
        # more than a 2-core machine runs at once).
        result.setdefault("AIRFLOW__CORE__PARALLELISM", str(LOCAL_PARALLELISM))
    return result


def health(port: int, timeout: float = 3) -> dict | None:
    """The webserver's ``/health`` document; None while it does not answer."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/health", timeout=timeout) as response:
            return json.loads(response.read().decode("utf-8"))
    except (OSError, ValueError, urllib.error.URLError):
        return None


def is_healthy(document: Mapping | None) -> bool:
    if not document:
        return False
    return all(
        (document.get(part) or {}).get("status") == "healthy"
        for part in ("metadatabase", "scheduler")
    )


def status(home: Path | None = None) -> list[ServerStatus]:
    """Whether each server runs, with its PID and address."""
    home = airflow_home() if home is None else home
    result = []
    for server in SERVERS:
        record = running_record(pid_file(home, server))
        address = f"http://{HOST}:{record.port}" if record and record.port else "-"
        result.append(ServerStatus(server, record is not None, record and record.pid, address))
    return result


def ensure_admin_user(
    env: Mapping[str, str],
    username: str = ADMIN_USERNAME,
    password: str = ADMIN_PASSWORD,
) -> str:
    """Create the admin user in ``env``'s metadata DB, or reset its password and role."""
    result = subprocess.run(
        [sys.executable, "-m", "dev.local_stack.airflow_servers", "admin-user",
         "--username", username, "--password", password],
        env=dict(env),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip()[-2000:]
        raise AirflowServersError(f"could not create the admin user:\n{tail}")
    return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""


def _upsert_admin(username: str, password: str) -> str:
    """In-process: needs Airflow's configuration (AIRFLOW_HOME) of the target DB."""
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

    with get_application_builder() as appbuilder:
        security = appbuilder.sm
        role = security.find_role("Admin")
        if role is None:
            raise AirflowServersError("the Admin role is missing: run `airflow db migrate` first")
        user = security.find_user(username=username)
        if user is None:
            created = security.add_user(
                username, "Local", "Admin", f"{username}@localhost.invalid", role, password
            )
            if not created:
                raise AirflowServersError(f"could not create user {username!r}")
            return f"created user {username!r} (role Admin)"
        user.roles = [role]
        user.active = True
        security.update_user(user)
        security.reset_password(user.id, password)
        return f"updated user {username!r} (role Admin, password reset)"


def _tail(path: Path, lines: int = 30) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    return ""


def _wait_healthy(home: Path, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    document = None
    while time.monotonic() < deadline:
        for server in SERVERS:
            if running_record(pid_file(home, server)) is None:
                log = log_file(home, server)
                raise AirflowServersError(
                    f"the {server} exited while starting; end of {log}:\n{_tail(log)}"
                )
        document = health(port)
        if is_healthy(document):
            return
        time.sleep(1)
    raise AirflowServersError(
        f"timed out after {timeout:.0f} s waiting for http://{HOST}:{port}/health to report "
        f"healthy (last answer: {document}); logs: {log_file(home, 'webserver')}, "
        f"{log_file(home, 'scheduler')}"
    )


def start(
    env: Mapping[str, str] | None = None,
    port: int = DEFAULT_PORT,
    log_server_port: int | None = None,
    timeout: float = 240,
    admin: tuple[str, str] | None = (ADMIN_USERNAME, ADMIN_PASSWORD),
) -> list[ServerStatus]:
    """Start (or reuse) the webserver on ``HOST:port`` and the scheduler; wait for /health.

    ``env`` is the servers' whole environment (default: this process's), its
    ``AIRFLOW_HOME`` names the metadata DB and where logs and PID files go. The metadata
    DB must be migrated already (``make airflow-db``).
    """
    environment = server_environment(env, port, log_server_port)
    home = Path(environment["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)

    web = running_record(pid_file(home, "webserver"))
    if web is not None and web.port is not None:
        port = web.port  # reused: it answers where it was started
        environment = server_environment(environment, port, log_server_port)
    elif port_open(port):
        raise AirflowServersError(
            f"port {port} is in use by a process this project did not start; "
            "stop it or set SPARKIFY_AIRFLOW_PORT"
        )
    scheduler_up = running_record(pid_file(home, "scheduler")) is not None
    if admin is not None and (web is None or not scheduler_up):
        print(ensure_admin_user(environment, *admin), flush=True)
    spawned = []
    try:
        if web is None:
            # Ours is not running, so neither is the gunicorn master of this file.
            (home / "airflow-webserver.pid").unlink(missing_ok=True)
            spawn(
                webserver_command(home, port),
                pid_file(home, "webserver"),
                log_file(home, "webserver"),
                environment,
                port,
                cwd=PROJECT_ROOT,
            )
            spawned.append("webserver")
        if not scheduler_up:
            spawn(
                scheduler_command(),
                pid_file(home, "scheduler"),
                log_file(home, "scheduler"),
                environment,
                cwd=PROJECT_ROOT,
            )
            spawned.append("scheduler")
        _wait_healthy(home, port, timeout)
    except BaseException:
        for server in reversed(spawned):  # no half-started Airflow left behind
            stop_recorded(pid_file(home, server))
        raise
    return status(home)


def stop(home: Path | None = None, timeout: float = 30) -> list[str]:
    """Stop the servers recorded under ``home``; the names of those that were running."""
    home = airflow_home() if home is None else home
    # The scheduler first: it must not start tasks while the UI goes away.
    return [
        server for server in reversed(SERVERS) if stop_recorded(pid_file(home, server), timeout)
    ]


# --------------------------------------------------------------------------- CLI


def login_instructions(port: int, home: Path) -> str:
    return (
        f"Airflow UI: http://{HOST}:{port}  (log in as {ADMIN_USERNAME} / {ADMIN_PASSWORD}: "
        "a local-development account, never use it elsewhere)\n"
        f"Logs: {log_file(home, 'webserver')}, {log_file(home, 'scheduler')}\n"
        "`make stop` stops Airflow and the local stack."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    start_parser = commands.add_parser("start", help="start or reuse both servers")
    start_parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    start_parser.add_argument("--timeout", type=float, default=240)
    commands.add_parser("stop", help="stop both servers")
    commands.add_parser("status", help="show whether they run")
    admin_parser = commands.add_parser("admin-user", help="create or update the admin user")
    admin_parser.add_argument("--username", default=ADMIN_USERNAME)
    admin_parser.add_argument("--password", default=ADMIN_PASSWORD)
    args = parser.parse_args(argv)
    home = airflow_home()
    try:
        if args.command == "admin-user":
            print(_upsert_admin(args.username, args.password))
            return 0
        if args.command == "stop":
            stopped = stop(home)
            print(
                f"Airflow stopped ({', '.join(stopped)})" if stopped else "Airflow was not running"
            )
            return 0
        if args.command == "start":
            env = make_airflow_environment()
            print(
                f"Starting Airflow's webserver and scheduler (AIRFLOW_HOME={home}, "
                f"{env.get('AIRFLOW__CORE__EXECUTOR', 'default executor')}) ...",
                flush=True,
            )
            servers = start(make_airflow_environment(), port=args.port, timeout=args.timeout)
        else:
            servers = status(home)
    except AirflowServersError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for server in servers:
        state = f"running (pid {server.pid})" if server.running else "stopped"
        print(f"{server.name:10} {server.address:24} {state}")
    if args.command == "start":
        web = read_pid_file(pid_file(home, "webserver"))
        print(login_instructions(web.port if web and web.port else args.port, home))
    return 0 if all(s.running for s in servers) or args.command == "status" else 1


if __name__ == "__main__":
    sys.exit(main())
