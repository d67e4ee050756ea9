"""The background servers of the local stack: started with a PID file, stopped by PID safely.

One guarded process manager for moto's S3 API (``stack.py``) and Airflow's webserver and
scheduler (``airflow_servers.py``). A PID file is JSON: the PID, the process's start time
(psutil's ``create_time``) and the port it serves. A PID only counts as ours while the
process holding it started at the recorded time, so a PID the system reused for an
unrelated process is treated as stale: its file is removed and the process is never
signalled.

PostgreSQL writes its own ``postmaster.pid`` and is stopped with ``pg_ctl``; it is
recognised by its command line instead (``process_running``), and a fallback stop goes
through ``stop_process`` like every other.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

# psutil derives create_time from clock ticks since boot: the same process always gives
# the same value, another process started in another tick a different one.
CREATE_TIME_TOLERANCE = 0.05


@dataclass(frozen=True)
class PidRecord:
    """What a PID file holds: the process, when it started, and what it serves."""

    pid: int
    create_time: float
    port: int | None = None

    def to_json(self) -> str:
        return json.dumps(self.__dict__) + "\n"


def write_pid_file(path: Path, pid: int, port: int | None = None) -> PidRecord:
    """Record ``pid`` with its start time (psutil's ``create_time``)."""
    record = PidRecord(pid=pid, create_time=psutil.Process(pid).create_time(), port=port)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(record.to_json(), encoding="utf-8")
    return record


def read_pid_file(path: Path) -> PidRecord | None:
    """The record of ``path``; None when it is missing or unreadable (a bare PID included)."""
    with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
        document = json.loads(path.read_text(encoding="utf-8"))
        return PidRecord(
            pid=int(document["pid"]),
            create_time=float(document["create_time"]),
            port=int(document["port"]) if document.get("port") is not None else None,
        )
    return None


def process_of(record: PidRecord | None) -> psutil.Process | None:
    """The live process of ``record``: same PID *and* same start time, not a zombie."""
    if record is None:
        return None
    try:
        process = psutil.Process(record.pid)
        if abs(process.create_time() - record.create_time) > CREATE_TIME_TOLERANCE:
            return None  # the PID now belongs to another process
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
    except psutil.Error:
        return None
    return process


def running_record(path: Path) -> PidRecord | None:
    """The record of ``path`` when its process still runs; a stale file is removed."""
    record = read_pid_file(path)
    if process_of(record) is not None:
        return record
    path.unlink(missing_ok=True)
    return None


def _contains(command: Sequence[str], part: Sequence[str]) -> bool:
    part = list(part)
    return any(
        list(command[i : i + len(part)]) == part for i in range(len(command) - len(part) + 1)
    )


def process_running(pid: int | None, argv: Sequence[str]) -> psutil.Process | None:
    """The live process ``pid`` when its command line contains ``argv`` in a row.

    For processes whose PID file is not ours (PostgreSQL's ``postmaster.pid``): a PID
    reused by anything else has another command line. ``argv`` must not be empty.
    """
    if not pid or not argv:
        return None
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process if _contains(process.cmdline(), argv) else None
    except psutil.Error:
        return None


def adopt_bare_pid_file(
    path: Path, argv: Sequence[str], port: int | None = None
) -> PidRecord | None:
    """Upgrade a PID file holding only a PID (the stack's format before this module).

    The process is adopted, and the file rewritten as a record, only when its command line
    contains ``argv`` (what we started); otherwise the file is left to ``running_record``,
    which clears it. None when nothing was adopted.
    """
    with contextlib.suppress(OSError, ValueError):
        process = process_running(int(path.read_text(encoding="utf-8").strip()), argv)
        if process is not None:
            return write_pid_file(path, process.pid, port)
    return None


def stop_process(
    process: psutil.Process,
    timeout: float = 30,
    *,
    first_signal: int = signal.SIGTERM,
    children_first: bool = True,
) -> None:
    """Stop ``process``: ``first_signal``, wait up to ``timeout``, then SIGKILL what is left.

    With ``children_first`` every descendant gets the signal before the process (gunicorn's
    workers, the scheduler's subprocesses). Without it only the process is signalled, and
    it stops its children itself (PostgreSQL's postmaster); SIGKILL still reaches them.
    """
    try:
        family = process.children(recursive=True)
    except psutil.Error:
        family = []
    for member in [*family, process] if children_first else [process]:
        with contextlib.suppress(psutil.Error):
            member.send_signal(first_signal)
    _gone, alive = psutil.wait_procs([*family, process], timeout=timeout)
    if not alive:
        return
    # Children spawned while the others were stopping (a gunicorn worker respawned, say).
    for member in list(alive):
        with contextlib.suppress(psutil.Error):
            alive.extend(member.children(recursive=True))
    for member in alive:
        with contextlib.suppress(psutil.Error):
            member.kill()
    psutil.wait_procs(alive, timeout=10)


def stop_recorded(path: Path, timeout: float = 30) -> bool:
    """Stop the process tree recorded in ``path``; True when something was running.

    The file is removed either way; a process that is not the recorded one is left alone.
    """
    process = process_of(read_pid_file(path))
    if process is not None:
        stop_process(process, timeout)
    path.unlink(missing_ok=True)
    return process is not None


def spawn(
    argv: Sequence[str],
    pid_file: Path,
    log_file: Path,
    env: Mapping[str, str] | None = None,
    port: int | None = None,
    cwd: Path | None = None,
) -> PidRecord:
    """Start ``argv`` in the background and record it in ``pid_file``.

    It runs in its own session (Ctrl-C in the terminal does not reach it), reads nothing,
    and appends its output to ``log_file``; ``env`` is its whole environment (default:
    this process's).
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        process = subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(os.environ if env is None else env),
            cwd=cwd,
            start_new_session=True,
        )
    return write_pid_file(pid_file, process.pid, port)
