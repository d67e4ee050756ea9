"""sparkify.staging_tables on the local stack's PostgreSQL: an old staging table gets the
columns the DDL declares (once, even when two loads upgrade it at once), stale runs' rows
go and fresh ones stay, a run's rows are replaced by its own re-run, and a run's counts
never touch another run's counts of the same object."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from sparkify import staging_tables
from sparkify.ddl import column_types
from sparkify.staging_rejects import StagingError
from tests.fakes import FakeCursor
from tests.stack_support import connect, fresh_database

pytestmark = pytest.mark.stack

DB = "sparkify_test_staging_tables"
EVENTS = '"public"."staging_events"'
COUNTS = '"public"."staging_counts"'
RUN = "scheduled__2018-11-02T00:00:00+00:00"
OTHER = "scheduled__2018-11-01T00:00:00+00:00"
DAY = "log_data/2018/11/2018-11-01-events.json"
NOW = datetime(2018, 11, 3, 12, 0)
# staging_events as create_tables.sql declared it before its rows named their object
# and run: CREATE TABLE IF NOT EXISTS leaves such a table as it is.
OLD_EVENTS_DDL = """
CREATE TABLE staging_events (
    artist VARCHAR(1024), auth VARCHAR(32), firstname VARCHAR(256), gender VARCHAR(8),
    iteminsession INTEGER, lastname VARCHAR(256), length DOUBLE PRECISION, level VARCHAR(16),
    location VARCHAR(1024), method VARCHAR(16), page VARCHAR(64),
    registration DOUBLE PRECISION, sessionid INTEGER, song VARCHAR(1024), status INTEGER,
    ts BIGINT NOT NULL, useragent VARCHAR(1024), userid VARCHAR(32)
)
"""


@pytest.fixture
def database() -> str:
    return fresh_database(DB)


@pytest.fixture
def old_table(database) -> str:
    """The database with staging_events of the old DDL, holding one row."""
    with connect(database) as conn, conn.cursor() as cursor:
        cursor.execute("DROP TABLE staging_events")
        cursor.execute(OLD_EVENTS_DDL)
        cursor.execute("INSERT INTO staging_events (page, ts) VALUES ('NextSong', 1)")
        conn.commit()
    return database


def column_names(database: str) -> list[str]:
    with connect(database) as conn, conn.cursor() as cursor:
        return [c.name for c in staging_tables.table_columns(cursor, "public", "staging_events")]


def test_an_old_table_gets_the_declared_columns_it_lacks(old_table):
    with connect(old_table) as conn, conn.cursor() as cursor:
        found = staging_tables.table_columns(cursor, "public", "staging_events")
        assert not staging_tables.is_run_partitioned(found)
        columns = staging_tables.ensure_declared_columns(
            cursor, "public", "staging_events", found, "postgres"
        )
        conn.commit()

    assert [c.name for c in columns] == list(column_types("staging_events"))
    assert staging_tables.is_run_partitioned(columns)
    by_name = {c.name: c for c in columns}
    assert (by_name["run_id"].data_type, by_name["run_id"].max_length) == (
        "character varying", 256,
    )  # fmt: skip
    assert by_name["source_key"].max_length == 1024
    assert by_name["staged_at"].data_type == "timestamp without time zone"
    assert column_names(old_table) == list(column_types("staging_events"))
    # the row it held is kept, of no run (the next load's forget_stale_runs drops it)
    with connect(old_table) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT page, run_id, staged_at FROM staging_events")
        assert cursor.fetchall() == [("NextSong", None, None)]


def test_a_table_with_every_declared_column_is_left_alone(database):
    cursor = FakeCursor()
    declared = column_types("staging_events")
    columns = [staging_tables.Column(name, "text", True, None) for name in declared]
    assert (
        staging_tables.ensure_declared_columns(
            cursor, "public", "staging_events", columns, "postgres"
        )
        == columns
    )
    assert cursor.executed == []  # no lock taken, nothing read


def test_two_loads_upgrading_at_once_add_each_column_once(old_table):
    """Both read the old columns; the second waits on the first's lock, reads the columns
    again once it has it, and adds nothing: no 'column already exists' error."""
    first = connect(old_table)
    second = connect(old_table)
    errors: list[BaseException] = []
    results: dict[str, list[str]] = {}
    with first as conn_a, second as conn_b, conn_a.cursor() as a, conn_b.cursor() as b:
        stale_a = staging_tables.table_columns(a, "public", "staging_events")
        stale_b = staging_tables.table_columns(b, "public", "staging_events")
        conn_a.commit()
        conn_b.commit()
        staging_tables.ensure_declared_columns(a, "public", "staging_events", stale_a, "postgres")

        def upgrade() -> None:
            try:
                columns = staging_tables.ensure_declared_columns(
                    b, "public", "staging_events", stale_b, "postgres"
                )
                conn_b.commit()
                results["b"] = [c.name for c in columns]
            except BaseException as exc:
                conn_b.rollback()
                errors.append(exc)

        thread = threading.Thread(target=upgrade)
        thread.start()
        time.sleep(0.5)
        assert thread.is_alive(), "the second upgrade did not wait for the first's lock"
        conn_a.commit()
        thread.join(timeout=30)
        assert not thread.is_alive()

    assert errors == []
    assert results["b"] == list(column_types("staging_events"))
    assert column_names(old_table) == list(column_types("staging_events"))


def test_two_loads_upgrading_from_two_threads_at_the_same_moment(old_table):
    """The same race left to the threads themselves, started together: no error, each
    column once."""
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def upgrade() -> None:
        try:
            with connect(old_table) as conn, conn.cursor() as cursor:
                found = staging_tables.table_columns(cursor, "public", "staging_events")
                barrier.wait(timeout=10)
                staging_tables.ensure_declared_columns(
                    cursor, "public", "staging_events", found, "postgres"
                )
                conn.commit()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=upgrade) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert column_names(old_table) == list(column_types("staging_events"))


def test_table_columns_of_a_missing_table_says_to_create_it(database):
    missing = r"public\.nope does not exist \(run create_tables"
    with (
        connect(database) as conn,
        conn.cursor() as cursor,
        pytest.raises(StagingError, match=missing),
    ):
        staging_tables.table_columns(cursor, "public", "nope")


def stage_rows(database: str, rows: list[tuple[int, str | None, datetime | None]]) -> None:
    """Rows of staging_events: (iteminsession, run_id, staged_at)."""
    with connect(database) as conn, conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO staging_events (page, ts, iteminsession, run_id, staged_at) "
            "VALUES ('NextSong', 1541030400000, %s, %s, %s)",
            rows,
        )
        conn.commit()


def staged(database: str) -> list[tuple]:
    with connect(database) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT iteminsession, run_id FROM staging_events ORDER BY iteminsession")
        return cursor.fetchall()


def test_forget_stale_runs_drops_other_runs_day_old_rows_and_rows_of_no_run(database):
    day_ago = NOW - staging_tables.KEEP_OTHER_RUNS
    stage_rows(database, [
        (1, OTHER, day_ago - timedelta(seconds=1)),  # another run's, older than a day: goes
        (2, OTHER, day_ago + timedelta(minutes=1)),  # another run's, fresh: stays
        (3, "manual__x", NOW - timedelta(minutes=5)),  # a run at work now: stays
        (4, None, NOW),  # of no run (staged before runs were kept apart): goes
        (5, RUN, NOW - timedelta(days=30)),  # the run's own, however old: the load's to replace
    ])  # fmt: skip
    with connect(database) as conn, conn.cursor() as cursor:
        staging_tables.forget_stale_runs(cursor, EVENTS, RUN, now=NOW)
        conn.commit()
    assert staged(database) == [(2, OTHER), (3, "manual__x"), (5, RUN)]


def test_forget_stale_runs_defaults_to_now(database):
    now = staging_tables.utc_now()
    assert now.tzinfo is None
    assert abs(now - datetime.now(UTC).replace(tzinfo=None)) < timedelta(seconds=5)
    stage_rows(database, [(1, OTHER, now - timedelta(days=2)), (2, OTHER, now)])
    with connect(database) as conn, conn.cursor() as cursor:
        staging_tables.forget_stale_runs(cursor, EVENTS, RUN)
        conn.commit()
    assert staged(database) == [(2, OTHER)]


def test_forget_run_drops_the_runs_rows_only_and_a_rollback_keeps_them(database):
    stage_rows(database, [(1, RUN, NOW), (2, OTHER, NOW), (3, RUN, NOW), (4, None, NOW)])
    with connect(database) as conn, conn.cursor() as cursor:
        staging_tables.forget_run(cursor, EVENTS, RUN)
        conn.rollback()  # a failed re-run leaves the run's rows as they were
    assert staged(database) == [(1, RUN), (2, OTHER), (3, RUN), (4, None)]
    with connect(database) as conn, conn.cursor() as cursor:
        staging_tables.forget_run(cursor, EVENTS, RUN)
        conn.commit()
    assert staged(database) == [(2, OTHER), (4, None)]


def counts(database: str) -> list[tuple]:
    with connect(database) as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, source_key, hour_start, plays, run_id FROM staging_counts "
            "ORDER BY run_id, source_key, hour_start"
        )
        return cursor.fetchall()


def test_record_counts_replaces_the_runs_counts_and_keeps_other_runs_of_the_same_object(
    database,
):
    """24 hourly runs stage one day file: each run's counts of it are its own."""
    hour0 = 1541030400000 // 3_600_000
    with connect(database) as conn, conn.cursor() as cursor:
        staging_tables.record_counts(
            cursor, COUNTS, "staging_events", OTHER, [DAY], {DAY: {hour0: 4}}
        )
        # the run's first attempt, counting another object too
        staging_tables.record_counts(
            cursor, COUNTS, "staging_events", RUN, [DAY, "log_data/old.json"],
            {DAY: {hour0: 1}, "log_data/old.json": {hour0: 9}},
        )  # fmt: skip
        # a count of the same run for another table stays
        staging_tables.record_counts(
            cursor, COUNTS, "staging_songs", RUN, ["song_data/a.json"], {"song_data/a.json": {0: 2}}
        )
        conn.commit()
    with connect(database) as conn, conn.cursor() as cursor:
        # the run's retry: its counts for the table are replaced by the retry's
        staging_tables.record_counts(
            cursor, COUNTS, "staging_events", RUN, [DAY], {DAY: {hour0: 3, hour0 + 1: 2}}
        )
        conn.commit()

    hour = datetime(2018, 11, 1, 0)
    assert counts(database) == [
        ("staging_events", DAY, hour, 4, OTHER),
        ("staging_events", DAY, hour, 3, RUN),
        ("staging_events", DAY, hour + timedelta(hours=1), 2, RUN),
        ("staging_songs", "song_data/a.json", datetime(1970, 1, 1), 2, RUN),
    ]


def test_record_counts_of_no_plays_still_clears_the_runs_counts(database):
    with connect(database) as conn, conn.cursor() as cursor:
        staging_tables.record_counts(cursor, COUNTS, "staging_events", RUN, [DAY], {DAY: {0: 1}})
        staging_tables.record_counts(cursor, COUNTS, "staging_events", RUN, [DAY], {})
        conn.commit()
    assert counts(database) == []
