"""Run ``sparkify_etl`` end to end on the local stack: what ``make run`` does.

1. picks the data: a folder in Sparkify's layout (``--data``) or a freshly generated
   sample (``.local/sample``), and the date range (``--start``/``--end``, both days
   included; by default the days of the folder's log files);
2. mirrors the folder into the local S3 API;
3. runs ``airflow dags backfill`` over the range (one run per day, as many at a time
   as the DAG's ``max_active_runs``) with the DebugExecutor (``--executor`` or
   ``SPARKIFY_BACKFILL_EXECUTOR=LocalExecutor`` for the other; see
   ``backfill_environment``);
4. checks every run succeeded, and prints rows per table and the quality checks.

Airflow's settings come from the environment (``scripts/airflow_env.sh``), its metadata
DB is the local PostgreSQL's ``airflow_meta`` (``airflow_metadata.py``; the one ``make
airflow`` shows); the stack and the metadata DB must be up (the Makefile sees to both).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path

from dev.local_stack.airflow_metadata import CONN_VARIABLE, is_postgres, sql_alchemy_conn
from dev.local_stack.stack import (
    HOST,
    PG_DATABASE,
    PG_PASSWORD,
    PG_PORT,
    PG_USER,
    S3_BUCKET,
    S3_PORT,
    STATE_DIR,
)

DAG_ID = "sparkify_etl"
# The backfill's executor (measured in dev/bench/README.md); SPARKIFY_BACKFILL_EXECUTOR
# (make run BACKFILL_EXECUTOR=...) picks the other.
EXECUTORS = ("DebugExecutor", "LocalExecutor")
DEFAULT_EXECUTOR = "DebugExecutor"
EXECUTOR_VARIABLE = "SPARKIFY_BACKFILL_EXECUTOR"
# LocalExecutor: tasks at a time in a backfill.
LOCAL_PARALLELISM = 8
# Task instances one scheduling pass of the backfill may queue (max_active_tasks_per_dag;
# also the DebugExecutor's parallelism): more than a month of daily runs holds.
PASS_LIMIT = 1024
# sparkify.json_copy's child processes per staging load (default: one on 2+ cores).
COPY_PROCESSES_VARIABLE = "SPARKIFY_COPY_PROCESSES"
# airflow_local_settings.py of the backfill (its cluster policy: no retries; under the
# DebugExecutor no per-task caps).
BACKFILL_SETTINGS = Path(__file__).resolve().parent / "backfill_settings"
_FINISHED_RUNS = re.compile(r"finished run \d+ of \d+")
_LOG_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})-events\.json$")


def log_days(folder: Path) -> list[date]:
    """The days of the folder's ``log_data`` files, sorted."""
    days = {
        date.fromisoformat(match[1])
        for path in (folder / "log_data").rglob("*-events.json")
        if (match := _LOG_NAME.search(path.name))
    }
    if not days:
        raise FileNotFoundError(f"{folder}/log_data holds no YYYY-MM-DD-events.json files")
    return sorted(days)


def backfill_command(
    start: date | datetime, end: date | datetime, dag_id: str = DAG_ID
) -> list[str]:
    """``airflow dags backfill`` of [start, end], both included, run anew.

    ``start``/``end`` are days (``2018-11-01``) or, for a DAG scheduled more often than
    daily, moments (``2018-11-01T23:00:00``: the last hourly run of that day).
    ``--delay-on-limit 0``: once the runs allowed at a time (``max_active_runs``) are
    done, the next ones start without the default 1 s wait. (Retries: see
    ``backfill_environment``; ``--disable-retry`` misses tasks that ran in a
    LocalExecutor worker in Airflow 2.11.)
    """
    airflow = [sys.executable, "-m", "airflow"]
    dates = ["-s", start.isoformat(), "-e", end.isoformat()]
    options = ["--reset-dagruns", "--delay-on-limit", "0", "-y"]
    return [*airflow, "dags", "backfill", *dates, *options, dag_id]


def backfill_environment(
    environ: dict[str, str] | None = None, executor: str | None = None
) -> dict[str, str]:
    """The environment of a backfill: ``environ`` with ``executor``.

    ``executor`` defaults to ``$SPARKIFY_BACKFILL_EXECUTOR``, else ``DEFAULT_EXECUTOR``.

    ``DebugExecutor`` (the default): every task inside the backfill's own process, one at
    a time, its output the backfill's; a failed task fails its run at once. Measured on
    this project's 2-core machines (``dev/bench/README.md``) it beats the LocalExecutor
    at one run at a time *and* at 30: a task here is ~0.1-0.2 s of work, and a
    LocalExecutor task costs more than that in process start-up and CPU (forked, but it
    still loads the DAG, its connections and its templates anew, twice).

    ``LocalExecutor`` (needs PostgreSQL metadata, as ``make run``'s is): each task in a
    process forked from the backfill's, at most ``LOCAL_PARALLELISM`` at a time: it pays
    when tasks wait on I/O for longer than their start-up, or with more cores.

    Both: one scheduling pass of the backfill (each ends in Airflow 2's hard-coded 1 s
    sleep) queues every ready task of every active run. Airflow's defaults stop a pass
    at 16 task instances of the DAG queued or running (``max_active_tasks_per_dag``,
    which the DAG leaves to the configuration), and the DebugExecutor runs at most
    ``parallelism`` (32) of the queued ones per pass: 30 daily runs of 12 tasks took 23
    passes, with ``PASS_LIMIT`` they take 7 (one per level of the task graph). The
    cluster policy of ``backfill_settings/`` takes the retries away (a failed task fails
    its run at once) and, under the DebugExecutor, the per-task caps that cannot matter
    when tasks run one at a time (``create_tables``' one at a time would otherwise cost a
    pass per run).
    """
    env = dict(os.environ if environ is None else environ)
    executor = executor or env.get(EXECUTOR_VARIABLE) or DEFAULT_EXECUTOR
    if executor not in EXECUTORS:
        raise ValueError(f"backfill executor must be one of {EXECUTORS}, not {executor!r}")
    if executor == "LocalExecutor" and not is_postgres(env.get(CONN_VARIABLE)):
        raise ValueError(
            "the LocalExecutor needs the PostgreSQL metadata DB (`make airflow-db`), "
            "Airflow refuses it on SQLite"
        )
    env["AIRFLOW__CORE__EXECUTOR"] = executor
    env.setdefault("AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG", str(PASS_LIMIT))
    # Staging encodes in this process: a day file of the sample is encoded in less time
    # than the fresh interpreter of a copy worker takes to start (~0.4 s per load,
    # measured), and a backfill's runs keep the cores busy without one.
    env.setdefault(COPY_PROCESSES_VARIABLE, "0")
    if executor == "DebugExecutor":
        env.setdefault("AIRFLOW__DEBUG__FAIL_FAST", "False")
        env.setdefault("AIRFLOW__CORE__PARALLELISM", str(PASS_LIMIT))
    else:
        env.setdefault("AIRFLOW__CORE__PARALLELISM", str(LOCAL_PARALLELISM))
        # Fork the task processes from the backfill (Airflow's default, said explicitly).
        env["AIRFLOW__CORE__EXECUTE_TASKS_NEW_PYTHON_INTERPRETER"] = "False"
        # The backfill schedules its own tasks: no "mini scheduler" pass after each task
        # (a DagRun row lock and a dependency pass per task, for the scheduler's benefit).
        env.setdefault("AIRFLOW__SCHEDULER__SCHEDULE_AFTER_TASK_EXECUTION", "False")
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(BACKFILL_SETTINGS) not in paths:
        env["PYTHONPATH"] = os.pathsep.join([str(BACKFILL_SETTINGS), *paths])
    return env


def run_backfill(
    start: date,
    end: date,
    log_path: Path,
    environ: dict[str, str] | None = None,
    executor: str | None = None,
) -> int:
    """Run the backfill, its output to ``log_path``, progress lines to stdout."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(
            backfill_command(start, end),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=backfill_environment(environ, executor),
        )
        assert process.stdout is not None
        finished = None
        for line in process.stdout:
            log.write(line)
            progress = _FINISHED_RUNS.search(line)
            # One line per finished run (the backfill logs every scheduling pass), and errors.
            if (progress and progress[0] != finished) or " ERROR - " in line:
                finished = progress[0] if progress else finished
                print("  " + line.split("} ", 1)[-1].rstrip()[:200], flush=True)
        return process.wait()


def run_states(start: date, end: date, dag_id: str = DAG_ID) -> dict[date, str]:
    """State of each run of ``dag_id`` whose logical date is in [start, end]."""
    from airflow.models import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        runs = session.query(DagRun).filter(DagRun.dag_id == dag_id).all()
        states = {run.logical_date.date(): str(run.state) for run in runs}
    return {day: state for day, state in sorted(states.items()) if start <= day <= end}


def task_seconds(start: date, end: date, since: float, dag_id: str = DAG_ID) -> list[float]:
    """Durations of the task instances of ``dag_id``'s runs in [start, end] (logical
    days) that started at or after ``since`` (a ``time.time()``): the backfill's work."""
    from airflow.models import DagRun, TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(DagRun.execution_date, TaskInstance.start_date, TaskInstance.end_date)
            .join(TaskInstance, TaskInstance.run_id == DagRun.run_id)
            .filter(DagRun.dag_id == dag_id, TaskInstance.dag_id == dag_id)
            .all()
        )
    return [
        (ended - started).total_seconds()
        for logical, started, ended in rows
        if started and ended and started.timestamp() >= since - 1 and start <= logical.date() <= end
    ]


def timing_line(wall: float, durations: list[float]) -> str:
    """How the backfill's wall time splits: the tasks' work and Airflow's share."""
    work = sum(durations)
    return (
        f"Wall {wall:.0f} s = {len(durations)} task instances' work {work:.0f} s (sum of "
        f"their durations) + Airflow's overhead {wall - work:.0f} s (start-up, scheduling "
        "passes, exit)"
    )


def print_warehouse_summary(conn_id: str = "redshift") -> None:
    """Rows per table and the latest run's quality checks, as plain text."""
    from sparkify.run_report import count_rows
    from sparkify.sql import read_sql
    from sparkify.warehouse import transaction

    with transaction(conn_id) as cursor:
        print("\nRows per table:")
        for table, count in count_rows(cursor).items():
            print(f"  {table:16} {'absent' if count is None else f'{count:,}':>8}")
        # The latest attempt of the latest run (a re-run records its checks again).
        cursor.execute(read_sql("report_latest_checks"))
        rows = cursor.fetchall()
    if rows:
        failed = [row for row in rows if not row[3]]
        passed = len(rows) - len(failed)
        print(f"\nData quality checks of {rows[0][0]}: {passed} of {len(rows)} passed")
        for _, name, table, _, observed, expected in failed:
            print(f"  FAILED {name} on {table}: observed {observed}, expected {expected}")


def reports_url_setting() -> str | None:
    """Where the DAGs write reports: the Variable (environment or the metadata DB, applied
    by ``make airflow-db``), else its value in airflow_settings.yaml."""
    from sparkify.report_store import REPORTS_URL_VARIABLE, configured_reports_url

    with contextlib.suppress(Exception):
        if url := configured_reports_url():
            return url
    from dev.local_stack.airflow_settings import read_settings

    for entry in read_settings()["variables"]:
        if entry.get("variable_name") == REPORTS_URL_VARIABLE:
            return str(entry.get("variable_value") or "") or None
    return None


def print_last_report(since: float | None = None, dag_id: str = DAG_ID) -> None:
    """The newest run report of ``dag_id`` (written at or after ``since``), read back from
    object storage through the connection the tasks wrote it with."""
    from sparkify.report_store import STORAGE_CONN_ID, latest_report, read_text

    reports_url = reports_url_setting()
    if not reports_url:
        print("\nNo reports URL is configured (Variable sparkify_reports_url): no run report")
        return
    try:
        url = latest_report(reports_url, dag_id, since=since, conn_id=STORAGE_CONN_ID)
        text = None if url is None else read_text(url, STORAGE_CONN_ID)
    except Exception as exc:  # the report is a bonus here: say why it is missing
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        print(f"\nCould not read the run reports under {reports_url}: {reason}")
        return
    if url is None or text is None:
        print(f"\nNo run report was written under {reports_url}/{dag_id}")
        return
    print(f"\nRun report of the last run ({url}, and .html):\n")
    print(text.rstrip())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="folder with song_data/ and log_data/")
    parser.add_argument("--start", type=date.fromisoformat, help="first day (YYYY-MM-DD)")
    parser.add_argument("--end", type=date.fromisoformat, help="last day, included")
    parser.add_argument(
        "--executor",
        choices=EXECUTORS,
        help=f"the backfill's executor (default: ${EXECUTOR_VARIABLE}, else {DEFAULT_EXECUTOR})",
    )
    args = parser.parse_args(argv)
    # Airflow's metadata DB: PostgreSQL (make airflow-db), the one `make airflow` shows,
    # for the backfill and for this process's reads of it; before Airflow is imported.
    os.environ.setdefault(CONN_VARIABLE, sql_alchemy_conn())

    folder = args.data
    if folder is None:
        from dev.sample_data import generate

        folder = STATE_DIR / "sample"
        summary = generate(folder)
        print(
            f"Generated the sample in {folder}: {summary.song_files} song files, "
            f"{summary.log_files} daily logs, {summary.events:,} events"
        )
    folder = folder.resolve()
    days = log_days(folder)
    start, end = args.start or days[0], args.end or days[-1]
    if end < start:
        parser.error(f"--end {end} is before --start {start}")

    from dev.local_stack.seed_s3 import seed

    count = seed(folder, S3_BUCKET, f"http://{HOST}:{S3_PORT}")
    print(f"Uploaded {count} objects to s3://{S3_BUCKET} (S3 API at http://{HOST}:{S3_PORT})")

    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    log_path = STATE_DIR / "logs" / f"backfill-{stamp}.log"
    env = backfill_environment(executor=args.executor)
    executor = env["AIRFLOW__CORE__EXECUTOR"]
    print(f"Backfilling {DAG_ID} from {start} to {end} with the {executor} (log: {log_path})")
    began, began_at = time.monotonic(), time.time()
    code = run_backfill(start, end, log_path, env, executor)
    elapsed = time.monotonic() - began

    states = run_states(start, end)
    expected_days = (end - start).days + 1
    failed = {day: state for day, state in states.items() if state != "success"}
    print(
        f"\n{len(states) - len(failed)} of {expected_days} daily runs succeeded "
        f"in {elapsed:.0f} s (backfill exit code {code})"
    )
    for day, state in failed.items():
        print(f"  {day}: {state} (see {log_path})")
    with contextlib.suppress(Exception):  # the split is a bonus: never fail the run on it
        print(timing_line(elapsed, task_seconds(start, end, began_at)))
    print_warehouse_summary()

    # Runs finish together when they run at once: the newest report is one of the last.
    print_last_report(since=began_at)
    print(
        f"\nThe warehouse stays up: psql postgresql://{PG_USER}:{PG_PASSWORD}@{HOST}:{PG_PORT}/{PG_DATABASE}"
        " (`make stop` stops it)"
    )
    ok = code == 0 and not failed and len(states) == expected_days
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
