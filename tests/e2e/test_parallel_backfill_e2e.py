"""End to end: runs active together load what one run at a time loads.

Through real Airflow backfills (``dev.bench.backfill.backfill``: ``make run``'s command and
environment, a private ``AIRFLOW_HOME`` under pytest's tmp folder, a fresh PostgreSQL
metadata DB cloned from a migrated template, a fresh warehouse), from a bucket of this
module's own with a 3-day sample dense enough for every hour to hold plays. The runs under
test are on the LocalExecutor (tasks in processes forked from the backfill, at most
``LOCAL_PARALLELISM`` at a time, truly in parallel); each is compared with a reference on
the DebugExecutor (``make run``'s), and the task instances' times in the metadata DB show
the runs overlapped: a moment with every run in progress, tasks of different runs running
at the same moment.

* **3 daily runs at once** with the DAG as written, against the same 3 days one run at a
  time (a DAG copy with ``max_active_runs=1``, which did not overlap): every star table
  equal row for row, every check of every run passed.
* **24 hourly runs of one day at once** (a DAG copy with ``schedule="@hourly"``,
  ``max_active_runs=24``), every run staging the same day file, ``stage_events`` of
  different runs at the same moment: star tables equal to one daily run of that day, every
  run's checks passed. ~4 min on 2 cores (its backfill ~50 s on the DebugExecutor): 288
  task instances in forked processes, each over a second of Airflow's CPU; a higher
  ``parallelism`` (16, 24) measured no faster there, a lower one (4) slower, a smaller
  sample no faster.

Each backfill has its own metadata database and warehouse (``bench_e2e_par_*``): the
PostgreSQL server is shared with other tests and with ``make run``.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from dev.bench.backfill import (
    all_runs_active_together,
    backfill,
    backfill_range,
    dag_default,
    peak_concurrency,
)
from dev.sample_data import SampleSpec, generate
from sparkify.checks import STAR_TABLES, default_checks
from tests.stack_support import STAR_TABLE_KEYS, fresh_bucket, table_rows, upload_folder

pytestmark = [pytest.mark.e2e, pytest.mark.stack]

BUCKET = "sparkify-e2e-parallel"
TEMPLATE = "bench_e2e_par_template"  # migrated once; each backfill's metadata DB a copy
FIRST_DAY, DAYS = date(2018, 11, 1), 3
LAST_DAY = FIRST_DAY + timedelta(days=DAYS - 1)
HOURLY_DAY = date(2018, 11, 2)
# ~700 plays a day: every hour of every day holds plays (an hourly run's checks want one).
SPEC = SampleSpec(start=FIRST_DAY, days=DAYS, songs=120, events_per_day=(800, 900), seed=11)
TASKS = 12  # sparkify_etl's tasks


@pytest.fixture(scope="module")
def bucket(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("sample")
    generate(folder, SPEC)
    upload_folder(fresh_bucket(BUCKET), BUCKET, folder)
    return BUCKET


def run(tmp_path_factory, bucket: str, name: str, first, last, **kwargs) -> dict:
    home = tmp_path_factory.mktemp(f"airflow-{name}")
    result = backfill(
        home,
        f"bench_e2e_par_{name}",
        bucket,
        first,
        last,
        metadata_database=f"bench_e2e_par_{name}_meta",
        metadata_template=TEMPLATE,
        log_path=home / "backfill.log",
        log=lambda *args: None,
        **kwargs,
    )
    assert result["ok"], f"see {result['log']}: {result['run_states']}"
    return result


def star_tables(database: str) -> dict[str, list[tuple]]:
    return {table: table_rows(database, table, STAR_TABLE_KEYS[table]) for table in STAR_TABLES}


def assert_every_check_passed(result: dict, runs: int) -> None:
    checks = result["checks"]
    assert checks["failed"] == []
    assert checks["runs"] == runs
    assert checks["checks"] == runs * len(default_checks())


@pytest.fixture(scope="module")
def parallel(tmp_path_factory, bucket) -> dict:
    """The 3 days at once, the DAG as written, LocalExecutor."""
    return run(tmp_path_factory, bucket, "local", FIRST_DAY, LAST_DAY, executor="LocalExecutor")


@pytest.fixture(scope="module")
def one_at_a_time(tmp_path_factory, bucket) -> dict:
    """The same 3 days, one run at a time (DebugExecutor: the reference, not the subject)."""
    return run(tmp_path_factory, bucket, "once", FIRST_DAY, LAST_DAY, max_active_runs=1)


def test_the_dag_as_written_runs_the_days_at_once(parallel):
    assert int(dag_default("max_active_runs")) >= DAYS
    assert not parallel["dag_copy"]
    assert parallel["runs"] == parallel["runs_succeeded"] == DAYS
    assert parallel["task_instances"] == DAYS * TASKS


def test_the_parallel_runs_really_overlapped(parallel, one_at_a_time):
    times = parallel["times"]
    assert all_runs_active_together(times), parallel["log"]
    # Tasks of different runs ran at the same moment, in different processes.
    assert peak_concurrency(times, across_runs=True) >= 2
    assert parallel["executor"] == "LocalExecutor"
    # The reference did not: one run after the other.
    assert peak_concurrency(one_at_a_time["times"], across_runs=True) == 1


def test_the_parallel_runs_load_what_one_at_a_time_loads(parallel, one_at_a_time):
    expected = star_tables(one_at_a_time["database"])
    assert all(expected.values()), {table: len(rows) for table, rows in expected.items()}
    actual = star_tables(parallel["database"])
    for table in STAR_TABLES:
        assert actual[table] == expected[table], table
    assert_every_check_passed(parallel, DAYS)
    assert_every_check_passed(one_at_a_time, DAYS)


def test_24_hourly_runs_at_once_load_what_one_daily_run_loads(tmp_path_factory, bucket):
    first_hour, last_hour = backfill_range(HOURLY_DAY, 1, "@hourly")
    hourly = run(
        tmp_path_factory,
        bucket,
        "hourly",
        first_hour,
        last_hour,
        schedule="@hourly",
        max_active_runs=24,
        executor="LocalExecutor",
    )
    assert hourly["executor"] == "LocalExecutor"
    assert hourly["runs"] == hourly["runs_succeeded"] == 24
    assert hourly["task_instances"] == 24 * TASKS
    times = hourly["times"]
    assert all_runs_active_together(times), hourly["log"]
    # Tasks of different runs ran at the same moment, in different processes; among them
    # the staging of the one day file every run reads.
    assert peak_concurrency(times, across_runs=True) >= 2, hourly["log"]
    staging = [t for t in times if t.task_id == "stage_events"]
    assert peak_concurrency(staging, across_runs=True) >= 2, hourly["log"]
    assert_every_check_passed(hourly, 24)

    # The reference (DebugExecutor, as the one-at-a-time reference of the daily test).
    daily = run(tmp_path_factory, bucket, "day", HOURLY_DAY, HOURLY_DAY)
    assert daily["runs"] == 1
    assert_every_check_passed(daily, 1)
    expected = star_tables(daily["database"])
    assert all(expected.values())
    actual = star_tables(hourly["database"])
    for table in STAR_TABLES:
        assert actual[table] == expected[table], table
