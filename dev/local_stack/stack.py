"""The local stack without Docker: a real PostgreSQL and a real S3 HTTP API on loopback.

Both servers keep their state under ``.local/`` (git-ignored). moto's server is started
and stopped through ``processes.py`` (a PID file with the process's start time, so a
reused PID is never signalled); PostgreSQL is stopped with ``pg_ctl`` and recognised by
its ``postmaster.pid`` *and* a command line naming our data directory. ``up`` is
idempotent: a server that already answers is reused, a stale PID file is cleared, and a
port held by a foreign process is reported, never killed.

    python -m dev.local_stack.stack up | down | status
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from dev.local_stack import processes

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STATE_DIR = Path(os.environ.get("SPARKIFY_STATE_DIR", PROJECT_ROOT / ".local"))

HOST = "127.0.0.1"
PG_PORT = int(os.environ.get("SPARKIFY_PG_PORT", "8001"))
S3_PORT = int(os.environ.get("SPARKIFY_S3_PORT", "8002"))
PG_DATABASE = PG_USER = "sparkify"


def _warehouse_password() -> str:
    """The local warehouse's password: the one airflow_settings.yaml gives `redshift`."""
    from dev.local_stack.airflow_settings import read_settings

    entry = next(c for c in read_settings()["connections"] if c["conn_id"] == "redshift")
    return str(entry["conn_password"])


PG_PASSWORD = _warehouse_password()
S3_BUCKET = os.environ.get("SPARKIFY_S3_BUCKET", "sparkify-local")


class StackError(RuntimeError):
    """A local server could not be started or reached; the message says what to do."""


@dataclass(frozen=True)
class ServerStatus:
    name: str
    running: bool
    pid: int | None
    address: str


def port_open(port: int, host: str = HOST, timeout: float = 0.3) -> bool:
    """True when something accepts TCP connections on host:port."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise StackError(f"timed out after {timeout:.0f} s waiting for {what}")


# --------------------------------------------------------------------------- PostgreSQL


def _pg_bin_dir() -> Path | None:
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True
    )
    return next((c for c in candidates if (c / "initdb").exists()), None)


def ensure_postgres_installed() -> Path:
    """Return PostgreSQL's bin folder, installing Debian's package when it is missing."""
    bin_dir = _pg_bin_dir()
    if bin_dir:
        return bin_dir
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise StackError(
            "PostgreSQL is not installed and cannot be installed here: "
            "run `apt-get install postgresql` as root (Debian/Ubuntu)."
        )
    print("Installing PostgreSQL from Debian's packages ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "postgresql"],
        check=True,
        env=env,
    )
    bin_dir = _pg_bin_dir()
    if not bin_dir:
        raise StackError("apt-get installed postgresql but no /usr/lib/postgresql/*/bin/initdb")
    return bin_dir


def _as_postgres(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run a PostgreSQL tool as the `postgres` user when we are root (initdb refuses root)."""
    if os.geteuid() == 0:
        args = ["runuser", "-u", "postgres", "--", *args]
    return subprocess.run(args, check=True, capture_output=True, text=True, **kwargs)


def _postgres_can_reach(path: Path) -> bool:
    if os.geteuid() != 0:
        return True
    probe = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(path)])
    return probe.returncode == 0


def pg_home() -> Path:
    """Folder holding the cluster: ``.local/postgres``.

    The `postgres` user must be able to walk into it. When a parent folder is private (a
    clone under a mode-700 temp dir, say), the cluster lives in a private folder of the
    system temp dir instead, and ``.local/postgres`` is a link to it.
    """
    home = STATE_DIR / "postgres"
    if home.is_symlink() or home.exists():
        return home.resolve()
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    if _postgres_can_reach(STATE_DIR):
        home.mkdir()
    else:
        target = Path(tempfile.mkdtemp(prefix="sparkify-postgres-"))
        target.chmod(0o755)
        home.symlink_to(target)
    if os.geteuid() == 0:
        shutil.chown(home.resolve(), "postgres", "postgres")
    return home.resolve()


def _pg_pid(data_dir: Path) -> int | None:
    pid_file = data_dir / "postmaster.pid"
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(pid_file.read_text().splitlines()[0])
    return None


def _pg_data_dir() -> Path:
    # Resolved: the `postgres` user may not be able to walk a link's parent folders.
    return (STATE_DIR / "postgres").resolve() / "data"


def _postmaster(data_dir: Path) -> psutil.Process | None:
    """The postmaster of ``postmaster.pid``: that PID, running ``postgres -D <data_dir>``."""
    return processes.process_running(_pg_pid(data_dir), ["-D", str(data_dir)])


def _clear_stale_postmaster_pid(data_dir: Path) -> bool:
    """Remove ``postmaster.pid`` when no postmaster of ``data_dir`` holds its PID."""
    stale = data_dir / "postmaster.pid"
    if not stale.exists() or _postmaster(data_dir) is not None:
        return False
    stale.unlink()
    return True


def postgres_status() -> ServerStatus:
    postmaster = _postmaster(_pg_data_dir())
    running = postmaster is not None and port_open(PG_PORT)
    pid = postmaster.pid if postmaster is not None and running else None
    return ServerStatus("postgres", running, pid, f"{HOST}:{PG_PORT}")


def start_postgres() -> ServerStatus:
    status = postgres_status()
    if status.running:
        # Reused: its role and database still follow airflow_settings.yaml.
        _ensure_sparkify_database(ensure_postgres_installed(), pg_home() / "run")
        return status
    if port_open(PG_PORT):
        raise StackError(
            f"port {PG_PORT} is in use by a process this project did not start; "
            "stop it or set SPARKIFY_PG_PORT"
        )
    bin_dir = ensure_postgres_installed()
    home = pg_home()
    data_dir, run_dir = home / "data", home / "run"
    if not (data_dir / "PG_VERSION").exists():
        _as_postgres(
            [str(bin_dir / "initdb"), "-D", str(data_dir), "-U", "postgres", "-E", "UTF8",
             "--locale=C.UTF-8", "--auth-local=trust", "--auth-host=scram-sha-256"]
        )  # fmt: skip
    _as_postgres(["mkdir", "-p", str(run_dir)])
    _clear_stale_postmaster_pid(data_dir)
    options = (
        f"-c listen_addresses={HOST} -p {PG_PORT} -c unix_socket_directories={run_dir} "
        "-c synchronous_commit=off -c max_connections=100"
    )
    try:
        _as_postgres(
            [str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-l", str(home / "server.log"),
             "-o", options, "-w", "-t", "60", "start"]
        )  # fmt: skip
    except subprocess.CalledProcessError as exc:
        raise StackError(
            f"PostgreSQL did not start: {exc.stderr.strip()} (log: {home / 'server.log'})"
        ) from exc
    _ensure_sparkify_database(bin_dir, run_dir)
    return postgres_status()


def _ensure_sparkify_database(bin_dir: Path, run_dir: Path) -> None:
    psql = [str(bin_dir / "psql"), "-h", str(run_dir), "-p", str(PG_PORT), "-U", "postgres"]
    psql += ["-v", "ON_ERROR_STOP=1", "-q", "-d", "postgres"]
    # The password follows airflow_settings.yaml, also on a cluster created before it changed.
    role_sql = (
        "DO $$ BEGIN "
        f"IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{PG_USER}') THEN "
        f"CREATE ROLE {PG_USER} LOGIN PASSWORD '{PG_PASSWORD}' CREATEDB; "
        f"ELSE ALTER ROLE {PG_USER} PASSWORD '{PG_PASSWORD}'; END IF; END $$;"
    )
    _as_postgres([*psql, "-c", role_sql])
    exists = _as_postgres(
        [*psql, "-tA", "-c", f"SELECT 1 FROM pg_database WHERE datname = '{PG_DATABASE}'"]  # noqa: S608
    )
    if exists.stdout.strip() != "1":
        _as_postgres([*psql, "-c", f"CREATE DATABASE {PG_DATABASE} OWNER {PG_USER}"])


def stop_postgres(timeout: float = 60) -> None:
    data_dir = _pg_data_dir()
    postmaster = _postmaster(data_dir)
    if postmaster is None:
        return
    bin_dir = _pg_bin_dir()
    if bin_dir:
        _as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-m", "fast", "-w", "stop"])
    else:
        # No pg_ctl (the package went away): SIGINT is the postmaster's fast shutdown; it
        # stops its backends itself.
        processes.stop_process(
            postmaster, timeout, first_signal=signal.SIGINT, children_first=False
        )


# --------------------------------------------------------------------------- S3 API (moto)


def _s3_pid_file() -> Path:
    return STATE_DIR / "s3" / "moto.pid"


def _moto_command() -> list[str]:
    return [str(Path(sys.executable).with_name("moto_server")), "-H", HOST, "-p", str(S3_PORT)]


def _s3_record() -> processes.PidRecord | None:
    """Our running moto server; a stale PID file is cleared."""
    path = _s3_pid_file()
    # A moto started before PID files recorded start times, recognised by its command line.
    adopted = processes.adopt_bare_pid_file(path, _moto_command(), S3_PORT)
    return adopted or processes.running_record(path)


def s3_status() -> ServerStatus:
    record = _s3_record()
    running = record is not None and port_open(S3_PORT)
    pid = record.pid if record is not None and running else None
    return ServerStatus("s3", running, pid, f"http://{HOST}:{S3_PORT}")


def start_s3() -> ServerStatus:
    status = s3_status()
    if status.running:
        return status
    if port_open(S3_PORT):
        raise StackError(
            f"port {S3_PORT} is in use by a process this project did not start; "
            "stop it or set SPARKIFY_S3_PORT"
        )
    command = _moto_command()
    if not Path(command[0]).exists():
        raise StackError(f"{command[0]} is missing: install the lock first (`make venv`)")
    # Ours but not answering on S3_PORT (started for another port, or hung): replace it.
    processes.stop_recorded(_s3_pid_file(), timeout=10)
    processes.spawn(command, _s3_pid_file(), _s3_pid_file().parent / "server.log", port=S3_PORT)
    try:
        _wait_for(lambda: port_open(S3_PORT), 30, f"the S3 API on {HOST}:{S3_PORT}")
    except StackError:
        processes.stop_recorded(_s3_pid_file(), timeout=10)  # no half-started server left
        raise
    return s3_status()


def stop_s3(timeout: float = 10) -> None:
    _s3_record()  # adopts a PID file of the old format, so that it can be stopped
    processes.stop_recorded(_s3_pid_file(), timeout)


# --------------------------------------------------------------------------- CLI


def up() -> list[ServerStatus]:
    return [start_postgres(), start_s3()]


def down() -> None:
    stop_s3()
    stop_postgres()


def status() -> list[ServerStatus]:
    return [postgres_status(), s3_status()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status"])
    args = parser.parse_args(argv)
    try:
        if args.command == "down":
            down()
            print("local stack stopped")
            return 0
        servers = up() if args.command == "up" else status()
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for server in servers:
        state = f"running (pid {server.pid})" if server.running else "stopped"
        print(f"{server.name:9} {server.address:24} {state}")
    return 0 if all(s.running for s in servers) or args.command == "status" else 1


if __name__ == "__main__":
    sys.exit(main())
