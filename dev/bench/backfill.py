"""The backfill of the sample month through real Airflow, timed, split and checked.

    python -m dev.bench.backfill                      # what `make bench` runs (~10 min)
    python -m dev.bench.backfill --max-active-runs default --no-hourly --executors DebugExecutor

Runs what ``make run`` runs (``airflow dags backfill``, ``backfill_command`` and
``backfill_environment`` of ``dev.local_stack.run_pipeline``) in a private
``AIRFLOW_HOME`` under ``.local/bench/``, with a fresh PostgreSQL metadata DB
(``bench_airflow_meta``, a copy of a migrated template) and the warehouse connection
aimed at a fresh ``bench_backfill`` database, the bucket Variable at a ``bench-*`` bucket.

What is varied:

* ``max_active_runs``: ``default`` backfills ``dags/sparkify_etl.py`` **as written**
  (32 runs at once: the month in one wave); a number backfills a **copy** generated
  into the private DAGs folder with only ``max_active_runs=`` changed (``1``: the
  one-run-at-a-time baseline). The same copy mechanism gives the **hourly** variant
  (``schedule="@hourly"``, 24 runs of one day reading the same day file at once).
* the executor: ``DebugExecutor`` (``make run``'s: every task inside the backfill's own
  process, one at a time) or ``LocalExecutor`` (tasks in forked worker processes, in
  parallel);
* the range: the month (30 days) and its first day alone, so that the cost of the other
  29 days is ``wall(30) - wall(1)``.

Every backfill is checked, not only timed: its runs' states, the quality checks every run
recorded (all must pass), and a digest of each star table (rows and an md5 over every
row), which must equal the one-run-at-a-time baseline's when both ran.

The wall time (the backfill process, start to exit) is split with the task instances'
times from the metadata DB: ``work`` is the sum of ``end_date - start_date`` (more than
the wall when tasks overlap), ``overhead`` = wall - work (Airflow's share), ``busy`` the
time in which at least one task ran (the union of those intervals), ``idle`` = wall -
busy (start-up, DAG parsing, the scheduling passes and their 1 s sleeps, exit), split
into ``startup`` (before the first task), ``gaps`` (between tasks) and ``tail`` (after
the last). ``passes`` counts the backfill's scheduling passes (its progress lines).
``queue_delay`` is, per task instance, ``start_date - queued_dttm``.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path
from typing import Any

from dev.bench.common import (
    BENCH_DIR,
    PROJECT_ROOT,
    Dataset,
    GeneratorSpec,
    child_environment,
    connection_environment,
    dsn,
    fresh_database,
    prepare,
)
from dev.local_stack import airflow_metadata
from dev.local_stack.run_pipeline import DAG_ID, backfill_command, backfill_environment
from sparkify.config import REPORTS_URL_VARIABLE

DAG_SOURCE = PROJECT_ROOT / "dags" / "sparkify_etl.py"
METADATA_DATABASE = "bench_airflow_meta"
EXECUTORS = ("LocalExecutor", "DebugExecutor")
# The DAG's keyword argument, on a line of its own (not a mention in its documentation).
# (A number, or the name of a module constant holding one.)
_MAX_ACTIVE_RUNS = re.compile(r"^(\s*)max_active_runs\s*=\s*(\d+|[A-Z_][A-Z0-9_]*)", re.MULTILINE)
_SCHEDULE = re.compile(r"^(\s*)schedule\s*=\s*(\"[^\"\n]*\"|'[^'\n]*')", re.MULTILINE)


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


# --------------------------------------------------------------------------- the DAG copy


def dag_default(name: str, source: Path = DAG_SOURCE) -> str:
    """The value the DAG file gives keyword argument ``name`` (``max_active_runs``,
    ``schedule``), as written: the default a backfill of the real DAG gets."""
    pattern = _MAX_ACTIVE_RUNS if name == "max_active_runs" else _SCHEDULE
    text = source.read_text(encoding="utf-8")
    found = pattern.findall(text)
    if len(found) != 1:
        raise RuntimeError(f"{source} has {len(found)} '{name}=' arguments, not 1")
    value = found[0][1].strip("\"'")
    if name == "max_active_runs" and not value.isdigit():  # a module constant
        constant = re.findall(rf"^{value}\s*=\s*(\d+)", text, re.MULTILINE)
        if len(constant) != 1:
            raise RuntimeError(f"{source}: max_active_runs={value}, which is not set once")
        value = constant[0]
    return value


def dag_copy(
    folder: Path,
    max_active_runs: int | None = None,
    source: Path = DAG_SOURCE,
    schedule: str | None = None,
) -> Path:
    """Write ``source`` into ``folder`` with ``max_active_runs=<max_active_runs>`` and
    ``schedule="<schedule>"`` (each only when given).

    Only those arguments change (each must occur exactly once): same dag_id, same tasks,
    the real operators. The folder holds nothing else.
    """
    if max_active_runs is not None and max_active_runs < 1:
        raise ValueError("max_active_runs must be >= 1")
    text = source.read_text(encoding="utf-8")
    changes = []
    for name, pattern, value in (
        ("max_active_runs", _MAX_ACTIVE_RUNS, max_active_runs),
        ("schedule", _SCHEDULE, schedule),
    ):
        if value is None:
            continue
        found = pattern.findall(text)
        if len(found) != 1:
            raise RuntimeError(
                f"{source} has {len(found)} '{name}=<n>' arguments, not 1: "
                f"the benchmark's DAG copy cannot set it"
            )
        literal = str(value) if name == "max_active_runs" else json.dumps(value)
        text = pattern.sub(lambda m, v=literal, n=name: f"{m[1]}{n}={v}", text)
        changes.append(f"{name}={literal}")
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.py"):
        stale.unlink()
    name = source.relative_to(PROJECT_ROOT) if source.is_relative_to(PROJECT_ROOT) else source
    header = (
        f"# Generated by dev/bench/backfill.py from {name} with "
        f"{', '.join(changes) or 'no change'}; benchmark only, do not edit.\n"
    )
    target = folder / source.name
    target.write_text(header + text, encoding="utf-8")
    return target


# --------------------------------------------------------------------------- timings


def _moment(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class TaskTime:
    day: str
    task_id: str
    started: datetime
    ended: datetime
    queued: datetime | None = None

    @property
    def seconds(self) -> float:
        return (self.ended - self.started).total_seconds()


def _read(source: Path | str) -> tuple[list[tuple], list[tuple]]:
    """dag_run and task_instance rows of ``DAG_ID`` from SQLite (a path) or PostgreSQL (a DSN)."""
    runs_sql = "SELECT run_id, execution_date, state FROM dag_run WHERE dag_id = {p}"
    tis_sql = (
        "SELECT run_id, task_id, start_date, end_date, queued_dttm FROM task_instance "
        "WHERE dag_id = {p}"
    )
    if isinstance(source, Path):
        with closing(sqlite3.connect(source)) as conn:
            columns = {row[1] for row in conn.execute("PRAGMA table_info(task_instance)")}
            if "queued_dttm" not in columns:  # a minimal schema (the tests')
                tis_sql = tis_sql.replace("queued_dttm", "NULL")
            runs = conn.execute(runs_sql.format(p="?"), (DAG_ID,)).fetchall()
            tis = conn.execute(tis_sql.format(p="?"), (DAG_ID,)).fetchall()
        return runs, tis
    import psycopg2

    conn = psycopg2.connect(source)
    try:
        with conn.cursor() as cursor:
            cursor.execute(runs_sql.format(p="%s"), (DAG_ID,))
            runs = cursor.fetchall()
            cursor.execute(tis_sql.format(p="%s"), (DAG_ID,))
            tis = cursor.fetchall()
    finally:
        conn.close()
    return runs, tis


def run_key(moment: datetime) -> str:
    """A run's name in the results: its logical day (``2018-11-01``), or its moment
    (``2018-11-01T05:00``) for a run that does not start at midnight (hourly)."""
    if (moment.hour, moment.minute, moment.second) == (0, 0, 0):
        return moment.date().isoformat()
    return moment.strftime("%Y-%m-%dT%H:%M")


def _bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """[first, last] as moments: a day (a ``date``) runs to its end, a moment is itself."""
    low = first if isinstance(first, datetime) else datetime.combine(first, dt_time.min)
    high = last if isinstance(last, datetime) else datetime.combine(last, dt_time.max)
    return (_moment(low), _moment(high))


def task_times(
    source: Path | str, first: date, last: date, since: datetime
) -> tuple[dict[str, str], list[TaskTime]]:
    """Run states by run (``run_key``), and the times of every task instance of the
    backfill's runs (logical date in [first, last]: days, or moments) that started at or
    after ``since``."""
    runs, tis = _read(source)
    low, high = _bounds(first, last)
    keys, states = {}, {}
    for run_id, execution_date, state in runs:
        moment = _moment(execution_date)
        if low <= moment <= high:
            keys[run_id] = run_key(moment)
            states[keys[run_id]] = state
    times = []
    for run_id, task_id, start, end, queued in tis:
        started, ended = _moment(start), _moment(end)
        if run_id in keys and started and ended and started >= since:
            times.append(TaskTime(keys[run_id], task_id, started, ended, _moment(queued)))
    return dict(sorted(states.items())), sorted(times, key=lambda t: (t.started, t.task_id))


def run_spans(times: list[TaskTime]) -> dict[str, tuple[datetime, datetime]]:
    """Per run: its first task's start and its last task's end."""
    spans: dict[str, tuple[datetime, datetime]] = {}
    for t in times:
        low, high = spans.get(t.day, (t.started, t.ended))
        spans[t.day] = (min(low, t.started), max(high, t.ended))
    return dict(sorted(spans.items()))


def all_runs_active_together(times: list[TaskTime]) -> bool:
    """Whether there was a moment when every run had started and none had ended: the
    latest first start comes before the earliest last end."""
    spans = run_spans(times).values()
    return len(spans) > 1 and max(s for s, _ in spans) < min(e for _, e in spans)


def peak_concurrency(times: list[TaskTime], across_runs: bool = False) -> int:
    """Most task instances running at one moment (``across_runs``: of distinct runs)."""
    events = sorted(
        [(t.started, 1, t.day) for t in times] + [(t.ended, -1, t.day) for t in times],
        key=lambda e: (e[0], e[1]),  # an end before a start at the same moment
    )
    running: dict[str, int] = defaultdict(int)
    peak = 0
    for _, step, day in events:
        running[day] += step
        live = [n for n in running.values() if n > 0]
        peak = max(peak, len(live) if across_runs else sum(live))
    return peak


def task_durations(
    source: Path | str, first: date, last: date, since: datetime
) -> tuple[dict[str, str], list[tuple[str, str, float]]]:
    """As ``task_times``, each task instance as (day, task_id, seconds)."""
    states, times = task_times(source, first, last, since)
    return states, [(t.day, t.task_id, t.seconds) for t in times]


def busy_seconds(intervals: Iterable[tuple[datetime, datetime]]) -> float:
    """Length of the union of the intervals: the time in which at least one ran."""
    total = 0.0
    current: tuple[datetime, datetime] | None = None
    for start, end in sorted(intervals):
        if current is None or start > current[1]:
            if current is not None:
                total += (current[1] - current[0]).total_seconds()
            current = (start, end)
        elif end > current[1]:
            current = (current[0], end)
    if current is not None:
        total += (current[1] - current[0]).total_seconds()
    return total


def split_wall(began: datetime, ended: datetime, times: list[TaskTime]) -> dict[str, float | None]:
    """The wall time ``began``..``ended`` split into work, busy and Airflow's idle time."""
    wall = (ended - began).total_seconds()
    work = sum(t.seconds for t in times)
    result: dict[str, float | None] = {
        "wall_seconds": wall,
        "work_seconds": work,
        "busy_seconds": None,
        "idle_seconds": None,
        "startup_seconds": None,
        "gap_seconds": None,
        "tail_seconds": None,
        "mean_concurrency": None,
        "queue_delay_median_seconds": None,
        "queue_delay_p90_seconds": None,
    }
    if not times:
        return result
    busy = busy_seconds((t.started, t.ended) for t in times)
    first_start = min(t.started for t in times)
    last_end = max(t.ended for t in times)
    startup = max(0.0, (first_start - began).total_seconds())
    tail = max(0.0, (ended - last_end).total_seconds())
    delays = sorted(
        (t.started - t.queued).total_seconds() for t in times if t.queued and t.queued <= t.started
    )
    result.update(
        busy_seconds=busy,
        idle_seconds=wall - busy,
        startup_seconds=startup,
        tail_seconds=tail,
        gap_seconds=max(0.0, wall - busy - startup - tail),
        mean_concurrency=work / busy if busy else None,
        queue_delay_median_seconds=statistics.median(delays) if delays else None,
        queue_delay_p90_seconds=delays[int(0.9 * (len(delays) - 1))] if delays else None,
    )
    return result


def per_day_work(times: list[TaskTime]) -> dict[str, float]:
    work: dict[str, float] = defaultdict(float)
    for t in times:
        work[t.day] += t.seconds
    return dict(sorted(work.items()))


# --------------------------------------------------------------------------- one backfill


def _metadata(
    home: Path,
    metadata: str,
    env: dict[str, str],
    log,
    database: str = METADATA_DATABASE,
    template: str | None = None,
) -> tuple[Path | str, float]:
    """A fresh metadata DB for the run; where to read it and the seconds it took.

    On PostgreSQL ``database`` is a copy of ``template`` (default ``<database>_template``),
    which is created and migrated when missing or behind: a migration once, not per run.
    """
    began = time.perf_counter()
    if metadata == "postgres":
        template = template or f"{database}_template"
        for name in (database, template):
            if not name.startswith("bench_"):
                raise ValueError(f"the benchmark only touches bench_* databases, not {name!r}")
        airflow_metadata.setup(
            {**env, airflow_metadata.CONN_VARIABLE: airflow_metadata.sql_alchemy_conn(template)},
            template,
            apply_settings=False,
        )
        airflow_metadata.clone_database(template, database)
        source: Path | str = airflow_metadata.sql_alchemy_conn(database).replace(
            "postgresql+psycopg2://", "postgresql://"
        )
    elif metadata == "sqlite":
        (home / "airflow.db").unlink(missing_ok=True)
        migrate = subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            env=env,
            capture_output=True,
            text=True,
        )
        if migrate.returncode != 0:
            output = (migrate.stdout + migrate.stderr)[-3000:]
            raise RuntimeError(f"airflow db migrate failed:\n{output}")
        source = home / "airflow.db"
    else:
        raise ValueError(f"metadata must be postgres or sqlite, not {metadata!r}")
    log(f"  metadata DB ({metadata}) ready in {time.perf_counter() - began:.1f} s")
    return source, time.perf_counter() - began


# --------------------------------------------------------------------------- the warehouse


def star_digest(database: str) -> dict[str, list]:
    """Per star table: [rows, md5 of every row's text in order]: equal digests, equal
    contents (a cheap whole-table comparison of two warehouses)."""
    import psycopg2

    from sparkify.checks import STAR_TABLES
    from sparkify.sql import identifier

    conn = psycopg2.connect(dsn(database))
    try:
        with conn.cursor() as cursor:
            result = {}
            for table in STAR_TABLES:
                digest = "md5(COALESCE(string_agg(t::text, '|' ORDER BY t::text), ''))"
                cursor.execute(f"SELECT COUNT(*), {digest} FROM {identifier(table)} t")  # noqa: S608
                result[table] = list(cursor.fetchone())
            return result
    finally:
        conn.close()


def check_summary(database: str) -> dict[str, Any]:
    """The quality checks recorded in ``database``: runs, checks, and the failed ones."""
    import psycopg2

    conn = psycopg2.connect(dsn(database))
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT to_regclass('public.data_quality_results') IS NOT NULL")
            if not cursor.fetchone()[0]:
                return {"runs": 0, "checks": 0, "failed": []}
            cursor.execute(
                "SELECT run_id, check_name, passed FROM data_quality_results ORDER BY 1, 2"
            )
            rows = cursor.fetchall()
    finally:
        conn.close()
    return {
        "runs": len({run_id for run_id, _, _ in rows}),
        "checks": len(rows),
        "failed": sorted({f"{run_id}: {name}" for run_id, name, ok in rows if not ok}),
    }


# --------------------------------------------------------------------------- one backfill


def backfill_range(first_day: date, days: int, schedule: str | None) -> tuple[date, date]:
    """``backfill -s``/``-e`` of ``days`` days from ``first_day``: days for the daily DAG,
    the first and the last hour for an ``@hourly`` copy (its runs start every hour)."""
    last_day = first_day + timedelta(days=days - 1)
    if schedule in (None, "@daily"):
        return first_day, last_day
    if schedule == "@hourly":
        start = datetime.combine(first_day, dt_time.min, tzinfo=UTC)
        return start, datetime.combine(last_day, dt_time(23), tzinfo=UTC)
    raise ValueError(f"schedule must be @daily or @hourly, not {schedule!r}")


def backfill(
    home: Path,
    database: str,
    bucket: str,
    first: date,
    last: date,
    *,
    max_active_runs: int | None = None,
    schedule: str | None = None,
    executor: str = "DebugExecutor",
    metadata: str = "postgres",
    metadata_database: str = METADATA_DATABASE,
    metadata_template: str | None = None,
    extra_env: dict[str, str] | None = None,
    log_path: Path | None = None,
    verify: bool = True,
    log=print,
) -> dict[str, Any]:
    """One ``airflow dags backfill`` of [first, last] as ``make run`` runs it
    (``backfill_command``, ``backfill_environment``), in the private ``home`` with a
    fresh metadata DB, into the fresh warehouse ``database`` from ``bucket``; timed.

    The DAG is the real one as written unless ``max_active_runs`` or ``schedule`` is
    given: then a copy with only those arguments changed (``dag_copy``). With ``verify``
    the result holds the warehouse's star tables (``star_digest``) and quality checks.
    """
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {EXECUTORS}, not {executor!r}")
    if executor == "LocalExecutor" and metadata != "postgres":
        raise ValueError("Airflow refuses LocalExecutor on SQLite: use metadata='postgres'")
    home.mkdir(parents=True, exist_ok=True)
    copied = max_active_runs is not None or schedule is not None
    dags = dag_copy(home / "dags", max_active_runs, schedule=schedule) if copied else DAG_SOURCE
    effective = max_active_runs or int(dag_default("max_active_runs", dags))
    env = child_environment(
        {"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(dags.parent)}
    )
    if metadata == "postgres":
        env[airflow_metadata.CONN_VARIABLE] = airflow_metadata.sql_alchemy_conn(metadata_database)
    else:
        env.pop(airflow_metadata.CONN_VARIABLE, None)
    source, migrate_seconds = _metadata(
        home, metadata, env, log, metadata_database, metadata_template
    )

    fresh_database(database, with_tables=False)  # create_tables is the DAG's first task
    run_env = backfill_environment(
        {**env, **connection_environment(database, bucket)}, executor=executor
    )
    # Run reports and alerts stay in the private home (in the data bucket they would
    # change its object count, and the next benchmark would upload it all again).
    run_env[f"AIRFLOW_VAR_{REPORTS_URL_VARIABLE.upper()}"] = (home / "reports").as_uri()
    run_env.pop("SPARKIFY_ALERT_CONN_ID", None)
    run_env.update(extra_env or {})
    what = f"copy with {dag_copy_changes(dags)}" if copied else "the DAG as written"
    label = f"mar{effective}-{executor.removesuffix('Executor').lower()}-{metadata}"
    if log_path is None:
        logs = BENCH_DIR / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log_path = logs / f"backfill-{label}-{datetime.now():%Y%m%dT%H%M%S}.log"
    log(
        f"  backfilling {DAG_ID} {first.isoformat()}..{last.isoformat()} ({what}, "
        f"max_active_runs={effective}, {executor}, {metadata} metadata; log: {log_path})"
    )
    since = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    load_before = os.getloadavg()[0]
    began_at = datetime.now(UTC)
    started = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as out:
        code = subprocess.run(
            backfill_command(first, last), env=run_env, stdout=out, stderr=subprocess.STDOUT
        ).returncode
    wall = time.perf_counter() - started
    load_after = os.getloadavg()[0]
    ended_at = began_at + timedelta(seconds=wall)

    states, times = task_times(source, first, last, since)
    split = split_wall(began_at, ended_at, times)
    per_task: dict[str, float] = defaultdict(float)
    for t in times:
        per_task[t.task_id] += t.seconds
    per_run = list(per_day_work(times).values())
    succeeded = sum(1 for state in states.values() if state == "success")
    text = log_path.read_text(encoding="utf-8", errors="replace")
    result: dict[str, Any] = {
        "dag_id": DAG_ID,
        "dag_file": str(dags),
        "dag_copy": copied,
        "max_active_runs": effective,
        "schedule": schedule or dag_default("schedule", dags),
        "executor": executor,
        "metadata": metadata,
        "parallelism": run_env.get("AIRFLOW__CORE__PARALLELISM"),
        "max_active_tasks_per_dag": run_env.get("AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG"),
        "first_day": first.isoformat(),
        "last_day": last.isoformat(),
        "days": (_bounds(first, last)[1].date() - _bounds(first, last)[0].date()).days + 1,
        "runs": len(states),
        "runs_succeeded": succeeded,
        "run_states": states,
        "exit_code": code,
        "ok": code == 0 and bool(states) and succeeded == len(states),
        **split,
        "wall_seconds": wall,
        "overhead_seconds": wall - split["work_seconds"],
        "overhead_share": (wall - split["work_seconds"]) / wall if wall else None,
        "wall_to_work": wall / split["work_seconds"] if split["work_seconds"] else None,
        "task_instances": len(times),
        "task_seconds": dict(sorted(per_task.items(), key=lambda kv: -kv[1])),
        "work_first_run_seconds": per_run[0] if per_run else None,
        "work_other_runs_mean_seconds": statistics.mean(per_run[1:]) if len(per_run) > 1 else None,
        "passes": text.count("[backfill progress]"),
        "all_runs_active_together": all_runs_active_together(times),
        "peak_tasks_at_once": peak_concurrency(times),
        "peak_runs_at_once": peak_concurrency(times, across_runs=True),
        "migrate_seconds": migrate_seconds,
        # The machine may be shared: the 1-minute load average around the backfill.
        "load_average": [load_before, load_after],
        "bucket": bucket,
        "database": database,
        "metadata_source": str(source),
        "log": str(log_path),
        "times": times,
    }
    result["wall_seconds_per_day"] = wall / result["days"]
    if verify:
        result["star"] = star_digest(database)
        result["checks"] = check_summary(database)
    return result


def dag_copy_changes(path: Path) -> str:
    """What a generated copy changed, from its header line."""
    header = path.read_text(encoding="utf-8").splitlines()[0]
    return header.split(" with ", 1)[-1].split(";", 1)[0]


def run_backfill_benchmark(
    data_dir: Path,
    client: Any,
    database: str = "bench_backfill",
    days: int | None = None,
    max_active_runs: int | None = None,
    executor: str = "DebugExecutor",
    metadata: str = "postgres",
    airflow_home: Path | None = None,
    metadata_database: str = METADATA_DATABASE,
    schedule: str | None = None,
    first_day: date | None = None,
    log=print,
) -> dict[str, Any]:
    """Backfill ``days`` days (default: the whole month) from ``first_day`` (default: the
    month's first) of the sample month on ``executor`` and ``metadata``: the real DAG as
    written, or a copy with ``max_active_runs``/``schedule`` changed; the timings and the
    warehouse's digest."""
    dataset = month_dataset()
    prepared = prepare(dataset, data_dir, client, log)
    first, last = backfill_range(
        first_day or date.fromisoformat(dataset.spec.start), days or dataset.spec.days, schedule
    )
    label = "-".join(
        [
            "default" if max_active_runs is None else f"mar{max_active_runs}",
            *([schedule.strip("@")] if schedule else []),
            executor.removesuffix("Executor").lower(),
            metadata,
        ]
    )
    result = backfill(
        airflow_home or BENCH_DIR / f"airflow-{label}",
        database,
        prepared.bucket,
        first,
        last,
        max_active_runs=max_active_runs,
        schedule=schedule,
        executor=executor,
        metadata=metadata,
        metadata_database=metadata_database,
        log=log,
    )
    result.pop("times")
    result["objects"] = len(prepared.keys)
    # The names bench_staging's table reads.
    result["work_first_day_seconds"] = result["work_first_run_seconds"]
    result["work_other_days_mean_seconds"] = result["work_other_runs_mean_seconds"]
    return result


def summarize_backfills(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over repeated backfills of one configuration (the first run's other fields)."""
    if not runs:
        raise ValueError("no backfill runs")
    keys = (
        "wall_seconds", "work_seconds", "busy_seconds", "idle_seconds", "startup_seconds",
        "gap_seconds", "tail_seconds", "overhead_seconds", "overhead_share",
        "wall_seconds_per_day", "mean_concurrency", "queue_delay_median_seconds",
        "queue_delay_p90_seconds", "work_first_day_seconds", "work_other_days_mean_seconds",
        "wall_to_work", "passes",
    )  # fmt: skip
    summary = dict(runs[0])
    for key in keys:
        values = [r[key] for r in runs if r.get(key) is not None]
        summary[key] = statistics.median(values) if values else None
    summary["repeats"] = len(runs)
    summary["wall_seconds_all"] = [r["wall_seconds"] for r in runs]
    summary["ok"] = all(r["ok"] for r in runs)
    summary["runs_succeeded"] = min(r["runs_succeeded"] for r in runs)
    summary["logs"] = [r["log"] for r in runs]
    if all("checks" in r for r in runs):
        failed = sorted({f for r in runs for f in r["checks"]["failed"]})
        summary["checks"] = {**runs[0]["checks"], "failed": failed}
        # Every repeat loaded the same tables (else the first's digest means little).
        summary["star_stable"] = all(r["star"] == runs[0]["star"] for r in runs)
    return summary


def hourly_day(folder: Path) -> date:
    """The first day of ``folder``'s logs with plays in each of its 24 hours (else the one
    with the most such hours): an hourly run of an hour without plays fails its checks
    (``songplays_has_rows``), which is the DAG's rule, not what the variant measures."""
    counts: dict[date, set[int]] = {}
    for path in sorted((folder / "log_data").rglob("*-events.json")):
        day = date.fromisoformat(path.name[:10])
        hours = counts.setdefault(day, set())
        for line in path.read_text(encoding="utf-8").splitlines():
            if '"NextSong"' in line:
                event = json.loads(line)
                if event.get("page") == "NextSong":
                    hours.add(datetime.fromtimestamp(event["ts"] / 1000, UTC).hour)
    if not counts:
        raise FileNotFoundError(f"no log files under {folder}/log_data")
    return max(counts, key=lambda day: (len(counts[day]), -day.toordinal()))


# --------------------------------------------------------------------------- CLI

RESULTS = PROJECT_ROOT / "dev" / "bench" / "results" / "backfill.json"
# Targets of issue 11 (dev/bench/README.md).
MAX_WALL_TO_WORK = 2.0  # 30 days: wall at most 2x the sum of task durations
MAX_29_TO_1 = 5.0  # the 29 days after the first at most 5x the first day alone


def _mar_label(value: int | None) -> str:
    return "default" if value is None else str(value)


def compare_to_reference(summaries: list[dict[str, Any]]) -> None:
    """Mark each month backfill's star tables equal (or not) to the one-run-at-a-time
    baseline's (``reference``), else to the first month backfill's."""
    months = [s for s in summaries if s["kind"] == "month"]
    reference = next(
        (s for s in months if s["max_active_runs"] == 1), months[0] if months else None
    )
    for summary in summaries:
        if summary["kind"] == "hourly":
            other = next((s for s in summaries if s["kind"] == "hourly-day"), None)
        else:
            other = reference if summary["kind"] == "month" else None
        summary["star_equals"] = None if other is None else summary["star"] == other["star"]
        summary["star_reference"] = None if other is None else other["label"]


def derived(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per configuration: wall/work of the month, and the 29 days after the first
    against the first day alone."""
    rows = []
    for month in (s for s in summaries if s["kind"] == "month"):
        day = next(
            (
                s
                for s in summaries
                if s["kind"] == "day"
                and (s["executor"], s["max_active_runs_arg"])
                == (month["executor"], month["max_active_runs_arg"])
            ),
            None,
        )
        row = {
            "label": month["label"],
            "wall_to_work": month["wall_to_work"],
            "wall_to_work_ok": month["wall_to_work"] is not None
            and month["wall_to_work"] <= MAX_WALL_TO_WORK,
        }
        if day is not None:
            rest = month["wall_seconds"] - day["wall_seconds"]
            row |= {
                "one_day_seconds": day["wall_seconds"],
                "other_days_seconds": rest,
                "other_days_to_one_day": rest / day["wall_seconds"],
                "other_days_ok": rest / day["wall_seconds"] <= MAX_29_TO_1,
            }
        rows.append(row)
    return rows


def render(summaries: list[dict[str, Any]], ratios: list[dict[str, Any]]) -> str:
    def num(value: float | None, digits: int = 1) -> str:
        return "-" if value is None else f"{value:,.{digits}f}"

    lines = [
        "| backfill | DAG | executor | runs ok | checks failed | star = ref | wall s "
        "| work s | overhead s | wall/work | busy s | start+gaps+tail s | passes "
        "| runs at once | load | repeats |",
        "|---|---|---|---:|---:|---|---:|---:|---:|---:|---:|---|---:|---:|---|---:|",
    ]
    for s in summaries:
        dag = "as written" if not s["dag_copy"] else "copy"
        dag += f", max_active_runs={s['max_active_runs']}"
        if s["schedule"] != "@daily":
            dag += f", {s['schedule']}"
        equal = {None: "-", True: "yes", False: "**NO**"}[s.get("star_equals")]
        walls = ", ".join(f"{w:.1f}" for w in s["wall_seconds_all"])
        load = "-".join(f"{x:.1f}" for x in s.get("load_average") or ()) or "-"
        lines.append(
            f"| {s['kind']} ({s['runs']} runs) | {dag} | {s['executor']} "
            f"| {s['runs_succeeded']}/{s['runs']} | {len(s['checks']['failed'])} | {equal} "
            f"| {num(s['wall_seconds'])} ({walls}) | {num(s['work_seconds'])} "
            f"| {num(s['overhead_seconds'])} | {num(s['wall_to_work'], 2)} "
            f"| {num(s['busy_seconds'])} | {num(s['startup_seconds'])} + "
            f"{num(s['gap_seconds'])} + {num(s['tail_seconds'])} | {s['passes']} "
            f"| {s['peak_runs_at_once']} | {load} | {s['repeats']} |"
        )
    lines.append("")
    for r in ratios:
        line = (
            f"- {r['label']}: wall/work {num(r['wall_to_work'], 2)} "
            f"(target <= {MAX_WALL_TO_WORK}: {'met' if r['wall_to_work_ok'] else 'MISSED'})"
        )
        if "other_days_seconds" in r:
            line += (
                f"; one day {num(r['one_day_seconds'])} s, the other 29 days "
                f"{num(r['other_days_seconds'])} s = {num(r['other_days_to_one_day'], 2)}x "
                f"(target <= {MAX_29_TO_1}: {'met' if r['other_days_ok'] else 'MISSED'})"
            )
        lines.append(line)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import argparse

    from dev.bench.common import s3_client

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--max-active-runs",
        default="default,1",
        help="comma-separated: default (the DAG as written) and/or numbers (copies)",
    )
    parser.add_argument("--executors", default="DebugExecutor")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=1, help="backfills per case (median)")
    parser.add_argument("--no-one-day", action="store_true", help="skip the one-day backfills")
    parser.add_argument("--no-hourly", action="store_true", help="skip the hourly variant")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    try:
        mars = [None if t == "default" else int(t) for t in args.max_active_runs.split(",")]
    except ValueError:
        parser.error(f"--max-active-runs takes default or integers, not {args.max_active_runs!r}")
    executors = args.executors.split(",")
    if unknown := set(executors) - set(EXECUTORS):
        parser.error(f"--executors takes {', '.join(EXECUTORS)}, not {', '.join(unknown)}")

    client = s3_client()
    cases = []  # (kind, executor, max_active_runs, days, schedule, first day)
    for executor in executors:
        for mar in mars:
            cases.append(("month", executor, mar, args.days, None, None))
            if not args.no_one_day:
                cases.append(("day", executor, mar, 1, None, None))
    if not args.no_hourly:
        folder = prepare(month_dataset(), BENCH_DIR / "data", client, log=print).folder
        day = hourly_day(folder)
        cases.append(("hourly", "DebugExecutor", 24, 1, "@hourly", day))
        cases.append(("hourly-day", "DebugExecutor", None, 1, None, day))  # its reference

    began = time.perf_counter()
    load = os.getloadavg()[0]
    summaries = []
    for kind, executor, mar, days, schedule, first_day in cases:
        label = f"{kind} {executor} max_active_runs={_mar_label(mar)}"
        if first_day is not None:
            label += f" {first_day}"
        print(f"\n{label}", flush=True)
        runs = [
            run_backfill_benchmark(
                BENCH_DIR / "data",
                client,
                days=days,
                max_active_runs=mar,
                executor=executor,
                schedule=schedule,
                first_day=first_day,
            )
            for _ in range(max(1, args.repeats))
        ]
        summary = summarize_backfills(runs)
        summary |= {"kind": kind, "label": label, "max_active_runs_arg": mar}
        print(
            f"  {summary['wall_seconds']:.1f} s wall, {summary['work_seconds']:.1f} s work, "
            f"{summary['passes']} passes, {summary['runs_succeeded']}/{summary['runs']} runs ok, "
            f"{len(summary['checks']['failed'])} checks failed",
            flush=True,
        )
        summaries.append(summary)
    compare_to_reference(summaries)
    ratios = derived(summaries)
    markdown = render(summaries, ratios)
    print(f"\n{markdown}")
    doc = {
        "started_load_average": load,
        "cpus": os.cpu_count(),
        "total_seconds": time.perf_counter() - began,
        "backfills": summaries,
        "targets": ratios,
        "markdown": markdown,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    print(f"\nWritten to {args.out}")
    bad = [
        s["label"]
        for s in summaries
        if not s["ok"] or s["checks"]["failed"] or s.get("star_equals") is False
    ]
    if bad:
        print(f"Wrong or failed: {', '.join(bad)}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
