"""The daily backfill of the sample month through real Airflow, timed and split.

Runs what ``make run`` runs (``airflow dags backfill`` with the DebugExecutor, from
``dev.local_stack.run_pipeline``), in a private ``AIRFLOW_HOME`` under
``.local/bench/airflow`` with the warehouse connection aimed at a ``bench_*`` database
and the bucket Variable at a ``bench-*`` bucket. The wall time is split into work
(the sum of the task instances' ``end_date - start_date`` from the metadata DB) and
Airflow's overhead (wall - work: process start-up, DAG parsing, scheduling loop).
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from contextlib import closing
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from dev.bench.common import (
    BENCH_DIR,
    Dataset,
    GeneratorSpec,
    child_environment,
    connection_environment,
    fresh_database,
    prepare,
)
from dev.local_stack.run_pipeline import DAG_ID, backfill_command, backfill_environment


def month_dataset() -> Dataset:
    """The default sample month (``SampleSpec()``: what ``make run`` generates)."""
    from dev.sample_data import DEFAULT_SPEC as d

    spec = GeneratorSpec(
        songs=d.songs,
        days=d.days,
        events_per_day=d.events_per_day,
        start=d.start.isoformat(),
        users=d.users,
        match_ratio=d.match_ratio,
        seed=d.seed,
    )
    return Dataset("month", "month", spec, group="backfill")


def _parse(moment: str | None) -> datetime | None:
    if not moment:
        return None
    parsed = datetime.fromisoformat(moment)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def task_durations(
    airflow_db: Path, first: date, last: date, since: datetime
) -> tuple[dict[str, str], list[tuple[str, str, float]]]:
    """Run states by day, and (day, task_id, seconds) of every task instance of the
    backfill's runs that started at or after ``since``."""
    with closing(sqlite3.connect(airflow_db)) as conn:
        runs = conn.execute(
            "SELECT run_id, execution_date, state FROM dag_run WHERE dag_id = ?", (DAG_ID,)
        ).fetchall()
        tis = conn.execute(
            "SELECT run_id, task_id, start_date, end_date FROM task_instance WHERE dag_id = ?",
            (DAG_ID,),
        ).fetchall()
    days = {}
    states = {}
    for run_id, execution_date, state in runs:
        day = _parse(execution_date).date()
        if first <= day <= last:
            days[run_id] = day.isoformat()
            states[day.isoformat()] = state
    durations = []
    for run_id, task_id, start, end in tis:
        started, ended = _parse(start), _parse(end)
        if run_id in days and started and ended and started >= since:
            durations.append((days[run_id], task_id, (ended - started).total_seconds()))
    return dict(sorted(states.items())), durations


def run_backfill_benchmark(
    data_dir: Path,
    client: Any,
    database: str = "bench_backfill",
    days: int | None = None,
    airflow_home: Path = BENCH_DIR / "airflow",
    log=print,
) -> dict[str, Any]:
    """Backfill ``days`` days (default: the whole month) and return the timings."""
    dataset = month_dataset()
    prepared = prepare(dataset, data_dir, client, log)
    first = date.fromisoformat(dataset.spec.start)
    last = first + timedelta(days=(days or dataset.spec.days) - 1)

    airflow_home.mkdir(parents=True, exist_ok=True)
    env = child_environment({"AIRFLOW_HOME": str(airflow_home)})
    began = time.perf_counter()
    migrate = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], env=env, capture_output=True, text=True
    )
    if migrate.returncode != 0:
        output = (migrate.stdout + migrate.stderr)[-3000:]
        raise RuntimeError(f"airflow db migrate failed:\n{output}")
    migrate_seconds = time.perf_counter() - began

    fresh_database(database, with_tables=False)  # create_tables is the DAG's first task
    run_env = backfill_environment({**env, **connection_environment(database, prepared.bucket)})
    # Run reports stay in the private home; no failure alerts go anywhere.
    run_env["SPARKIFY_REPORTS_DIR"] = str(airflow_home / "reports")
    run_env.pop("SPARKIFY_ALERT_CONN_ID", None)
    logs = BENCH_DIR / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"backfill-{datetime.now():%Y%m%dT%H%M%S}.log"
    log(f"  backfilling {DAG_ID} {first}..{last} (log: {log_path})")
    since = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    started = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as out:
        code = subprocess.run(
            backfill_command(first, last), env=run_env, stdout=out, stderr=subprocess.STDOUT
        ).returncode
    wall = time.perf_counter() - started

    states, durations = task_durations(airflow_home / "airflow.db", first, last, since)
    work = sum(seconds for _, _, seconds in durations)
    per_task: dict[str, float] = defaultdict(float)
    for _, task_id, seconds in durations:
        per_task[task_id] += seconds
    n_days = (last - first).days + 1
    succeeded = sum(1 for state in states.values() if state == "success")
    return {
        "dag_id": DAG_ID,
        "first_day": first.isoformat(),
        "last_day": last.isoformat(),
        "days": n_days,
        "runs_succeeded": succeeded,
        "exit_code": code,
        "ok": code == 0 and succeeded == n_days,
        "wall_seconds": wall,
        "work_seconds": work,
        "overhead_seconds": wall - work,
        "overhead_share": (wall - work) / wall if wall else None,
        "wall_seconds_per_day": wall / n_days,
        "task_instances": len(durations),
        "task_seconds": dict(sorted(per_task.items(), key=lambda kv: -kv[1])),
        "migrate_seconds": migrate_seconds,
        "bucket": prepared.bucket,
        "objects": len(prepared.keys),
        "database": database,
        "log": str(log_path),
    }
