"""LoadDimensionOperator of two runs at once on the local stack's PostgreSQL: loads of two
intervals started together end as the same loads one after the other would (no user
twice, each user's latest play), because each load locks the tables it writes before
writing; a lock held elsewhere makes a load wait before it writes anything.

Both loads are first made to queue behind a lock held by a third connection, so that
when it is released they really do start together: without the loads' own lock their
DELETE and INSERT of users interleave (here a duplicate-key error on users' primary key,
on Redshift, which enforces none, users twice)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg2
import pytest
from astro.table import Metadata, Table

from operators.load_dimension import LoadDimensionOperator
from sparkify.config import WAREHOUSE_CONN_ID
from tests.fakes import apply_environment
from tests.stack_support import (
    connect,
    connection_environment,
    dsn,
    fresh_database,
    table_rows,
)

pytestmark = pytest.mark.stack

DB = "sparkify_test_dimension_concurrency"
NOV1 = datetime(2018, 11, 1, tzinfo=UTC)
RUN_A = "scheduled__2018-11-01T00:00:00+00:00"
RUN_B = "scheduled__2018-11-02T00:00:00+00:00"
INTERVALS = {RUN_A: NOV1, RUN_B: NOV1 + timedelta(days=1)}
STAGING_EVENTS = Table(name="staging_events", conn_id=WAREHOUSE_CONN_ID, metadata=Metadata())


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


# (run_id, userid, level, ts): what each run staged in staging_events.
STAGED = [
    (RUN_A, "1", "free", NOV1 + timedelta(hours=10)),
    (RUN_A, "2", "free", NOV1 + timedelta(hours=11)),
    (RUN_B, "1", "paid", NOV1 + timedelta(days=1, hours=9)),  # user 1's latest play
    (RUN_B, "3", "paid", NOV1 + timedelta(days=1, hours=12)),
    # Run B also staged a play of run A's interval (as an hourly run of a day file would):
    # run A reads its own rows only, and run B's interval does not hold it: user 4 is in
    # no interval loaded.
    (RUN_B, "4", "free", NOV1 + timedelta(hours=8)),
]
EXPECTED_USERS = [
    (1, "First1", "Last1", "F", "paid", datetime(2018, 11, 2, 9)),
    (2, "First2", "Last2", "F", "free", datetime(2018, 11, 1, 11)),
    (3, "First3", "Last3", "F", "paid", datetime(2018, 11, 2, 12)),
]


def history_load(run_id: str) -> LoadDimensionOperator:
    """The users load as the DAG runs it."""
    return LoadDimensionOperator(
        task_id="load_user_dim_table", conn_id=WAREHOUSE_CONN_ID, table="users",
        sql="users_history.sql", tables={"staging_events": STAGING_EVENTS}, mode="history",
        history_table="users_history", interval_column="last_play_at", rebuild_sql="users.sql",
    )  # fmt: skip


def upsert_load(run_id: str) -> LoadDimensionOperator:
    return LoadDimensionOperator(
        task_id="load_user_dim_table", conn_id=WAREHOUSE_CONN_ID, table="users",
        sql="users_history.sql", tables={"staging_events": STAGING_EVENTS}, mode="upsert",
        key_columns=["user_id"], version_column="last_play_at",
    )  # fmt: skip


LOADS = {"history": history_load, "upsert": upsert_load}


def run_load(make: Callable[[str], LoadDimensionOperator], run_id: str) -> None:
    """As Airflow runs the task of ``run_id``: render its templated fields, then execute."""
    start = INTERVALS[run_id]
    context = {"data_interval_start": start, "data_interval_end": start + timedelta(days=1),
               "run_id": run_id}  # fmt: skip
    operator = make(run_id)
    operator.render_template_fields(context)
    operator.execute(context)


@pytest.fixture
def warehouse(monkeypatch) -> str:
    fresh_database(DB)
    apply_environment(monkeypatch, connection_environment(DB))
    with connect(DB) as conn, conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO staging_events (page, ts, userid, sessionid, iteminsession, firstname, "
            "lastname, gender, level, source_key, run_id, staged_at) "
            "VALUES ('NextSong', %s, %s, 1, 0, %s, %s, 'F', %s, 'k', %s, now())",
            [(ms(ts), user, f"First{user}", f"Last{user}", level, run)
             for run, user, level, ts in STAGED],
        )  # fmt: skip
        conn.commit()
    return DB


def users() -> list[tuple]:
    return table_rows(DB, "users", ["user_id", "last_play_at"])


def lock_waiters() -> list[str]:
    """The statements of sessions on the test database waiting for a lock."""
    with connect(DB) as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT query FROM pg_stat_activity "
            "WHERE datname = %s AND wait_event_type = 'Lock' ORDER BY query",
            (DB,),
        )
        return [row[0] for row in cursor.fetchall()]


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


class Loads:
    """Loads running in threads; ``join`` re-raises the first error."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []

    def start(self, make: Callable[[str], LoadDimensionOperator], run_id: str) -> None:
        def target() -> None:
            try:
                # Airflow's guard against execute() outside a task keeps its state in a
                # thread-local that only the main thread has set up (a worker runs each
                # task in a process of its own).
                from airflow.models.baseoperator import ExecutorSafeguard

                ExecutorSafeguard._sentinel.callers = {}
                run_load(make, run_id)
            except BaseException as exc:
                self.errors.append(exc)

        thread = threading.Thread(target=target, name=run_id)
        thread.start()
        self.threads.append(thread)

    def alive(self) -> int:
        return sum(thread.is_alive() for thread in self.threads)

    def join(self, timeout: float = 30.0) -> None:
        for thread in self.threads:
            thread.join(timeout)
        assert self.alive() == 0, "a load did not finish"
        if self.errors:
            raise self.errors[0]


def hold_lock(tables: str) -> object:
    """A third connection holding an EXCLUSIVE lock on ``tables`` until it is closed."""
    conn = psycopg2.connect(dsn(DB))
    cursor = conn.cursor()
    cursor.execute(f"LOCK TABLE {tables} IN EXCLUSIVE MODE")
    return conn


@pytest.mark.parametrize("mode", sorted(LOADS))
def test_sequential_loads_of_two_intervals(warehouse, mode):
    """The reference the concurrent loads are compared with."""
    run_load(LOADS[mode], RUN_A)
    run_load(LOADS[mode], RUN_B)
    assert users() == EXPECTED_USERS


@pytest.mark.parametrize("mode", sorted(LOADS))
def test_two_intervals_loading_at_once_end_as_one_after_the_other(warehouse, mode):
    blocker = hold_lock("users")
    loads = Loads()
    try:
        loads.start(LOADS[mode], RUN_A)
        loads.start(LOADS[mode], RUN_B)
        # both queued on the lock before either writes: released, they start together
        assert wait_for(lambda: len(lock_waiters()) == 2), lock_waiters()
    finally:
        blocker.close()
    loads.join()

    assert users() == EXPECTED_USERS  # every user once, with the latest play's level
    if mode == "history":
        history = table_rows(DB, "users_history", ["user_id", "last_play_at"])
        assert [(row[0], row[4]) for row in history] == [
            (1, "free"), (1, "paid"), (2, "free"), (3, "paid"),
        ]  # fmt: skip


@pytest.mark.parametrize("mode", sorted(LOADS))
def test_two_intervals_started_together_many_times_never_duplicate(warehouse, mode):
    """The loads left to race on their own, a few rounds (re-runs replace the same rows)."""
    for _ in range(5):
        barrier = threading.Barrier(2)

        def make(run_id: str, barrier=barrier) -> LoadDimensionOperator:
            barrier.wait(timeout=10)
            return LOADS[mode](run_id)

        loads = Loads()
        loads.start(make, RUN_A)
        loads.start(make, RUN_B)
        loads.join()
        assert users() == EXPECTED_USERS


def test_a_held_lock_makes_the_load_wait_before_it_writes_anything(warehouse):
    run_load(history_load, RUN_A)
    history_before = table_rows(DB, "users_history", ["user_id", "last_play_at"])
    users_before = users()
    # A lock on the history alone is enough: the load locks both tables it writes first.
    blocker = hold_lock("users_history")
    loads = Loads()
    try:
        loads.start(history_load, RUN_B)
        assert wait_for(lambda: len(lock_waiters()) == 1), lock_waiters()
        (waiting,) = lock_waiters()
        assert waiting.startswith('LOCK TABLE "public"."users", "public"."users_history"')
        time.sleep(0.3)
        assert loads.alive() == 1
        # nothing written yet (the blocker's transaction reads through its lock)
        assert table_rows(DB, "users_history", ["user_id", "last_play_at"]) == history_before
        assert users() == users_before
    finally:
        blocker.close()
    loads.join()
    assert users() == EXPECTED_USERS
