"""Unit tests for LoadFactOperator (an astro run_raw_sql task) against a fake warehouse."""

from __future__ import annotations

import logging
from datetime import datetime

import pendulum
import psycopg2
import pytest
from astro.sql import RawSQLOperator
from astro.table import Metadata, Table

from operators.load_fact import LoadFactOperator
from sparkify.sql import read_sql
from tests.fakes import FakeConnection, FakeCursor, Result, patch_postgres_hook, set_connection

COLUMNS = ["songplay_id", "start_time", "user_id", "level", "song_id", "artist_id",
           "session_id", "location", "user_agent"]  # fmt: skip
PARAMS = {
    "interval_start": datetime(2018, 11, 5),
    "interval_end": datetime(2018, 11, 6),
    "interval_start_ms": 1_541_376_000_000,
    "interval_end_ms": 1_541_462_400_000,
    "run_id": "scheduled__2018-11-05T00:00:00+00:00",
}
CONTEXT = {
    "data_interval_start": pendulum.datetime(2018, 11, 5, tz="UTC"),
    "data_interval_end": pendulum.datetime(2018, 11, 6, tz="UTC"),
    "run_id": "scheduled__2018-11-05T00:00:00+00:00",
}
STAGED = Table(name="staging_events", conn_id="warehouse", metadata=Metadata(schema="public"))
LOCK = 'LOCK TABLE "public"."songplays" IN EXCLUSIVE MODE'


@pytest.fixture(autouse=True)
def postgres_warehouse(monkeypatch):
    """The warehouse connection is a PostgreSQL one (its type picks the LOCK's syntax)."""
    set_connection(monkeypatch, "warehouse", "postgres")


def warehouse(total: int = 42, fail_on: str | None = None) -> FakeConnection:
    def respond(sql, params):
        if fail_on and sql.startswith(fail_on):
            raise psycopg2.errors.NotNullViolation('null value in column "start_time"')
        if sql.startswith("SELECT COUNT(*)"):
            return Result(rows=[(total,)])
        return Result(rowcount=3)

    return FakeConnection(FakeCursor(respond))


def make_operator(**kwargs) -> LoadFactOperator:
    kwargs.setdefault("tables", {"staged": STAGED})
    kwargs.setdefault("sql", "SELECT * FROM {{ staged }};  \n")
    return LoadFactOperator(
        task_id="load_songplays", conn_id="warehouse", table="songplays", **kwargs
    )


def run(operator: LoadFactOperator, context: dict = CONTEXT) -> Table:
    """As Airflow runs a task: render its templated fields, then execute."""
    operator.render_template_fields(context)
    return operator.execute(context)


def test_is_an_astro_run_raw_sql_task_with_table_arguments():
    operator = make_operator()
    assert isinstance(operator, RawSQLOperator)
    assert LoadFactOperator.template_fields == ("sql", "op_kwargs")
    assert operator.op_kwargs == {"staged": STAGED}
    assert operator.outlets == []  # Datasets come from the quality checks


def test_defaults():
    operator = make_operator()
    assert (operator.interval_column, operator.schema, operator.columns) == (
        "start_time", "public", COLUMNS,
    )  # fmt: skip


def test_sql_file_names_are_read_from_include_sql():
    operator = make_operator(sql="songplays.sql")
    assert operator.sql == read_sql("songplays")


def test_replaces_the_interval_in_one_transaction_and_returns_the_table(monkeypatch, caplog):
    conn = warehouse(total=42)
    asked = patch_postgres_hook(monkeypatch, conn)
    with caplog.at_level(logging.INFO):
        loaded = run(make_operator())

    assert loaded == Table(
        name="songplays", conn_id="warehouse", metadata=Metadata(schema="public")
    )
    assert asked == ["warehouse"]
    cols = ", ".join(f'"{c}"' for c in COLUMNS)
    assert conn.cursor_obj.executed == [
        (LOCK, None),
        (
            'DELETE FROM "public"."songplays" '
            'WHERE "start_time" >= %(interval_start)s AND "start_time" < %(interval_end)s',
            PARAMS,
        ),
        (
            f'INSERT INTO "public"."songplays" ({cols}) SELECT {cols} '
            'FROM (SELECT * FROM "public"."staging_events") AS src',
            PARAMS,
        ),
        ('SELECT COUNT(*) FROM "public"."songplays"', None),
    ]
    assert conn.events == ["commit", "close"]
    assert (
        "songplays: 42 rows after the load of 2018-11-05 00:00:00 to 2018-11-06 00:00:00"
        in caplog.text
    )


def test_real_query_non_utc_interval_and_another_schema(monkeypatch):
    conn = warehouse()
    patch_postgres_hook(monkeypatch, conn)
    start = pendulum.datetime(2018, 11, 5, tz="America/New_York")
    events = Table(name="staging_events", metadata=Metadata(schema="analytics"))
    songs = Table(name="staging_songs", metadata=Metadata(schema="analytics"))
    operator = LoadFactOperator(
        task_id="load", conn_id="warehouse", table="songplays", sql="songplays.sql",
        tables={"staging_events": events, "staging_songs": songs}, schema="analytics",
    )  # fmt: skip
    run_id = "manual__2018-11-05T05:00:00+00:00"
    run(
        operator,
        {"data_interval_start": start, "data_interval_end": start.add(days=1), "run_id": run_id},
    )

    lock, delete, insert, _ = conn.cursor_obj.executed
    assert lock == ('LOCK TABLE "analytics"."songplays" IN EXCLUSIVE MODE', None)
    assert delete[0].startswith('DELETE FROM "analytics"."songplays" WHERE')
    assert 'FROM "analytics"."staging_events" e' in insert[0]
    assert 'FROM "analytics"."staging_songs"' in insert[0]
    # The plays read are the rows this run staged, whatever other runs staged meanwhile.
    assert "e.run_id = %(run_id)s" in insert[0]
    assert "{{" not in insert[0]
    assert delete[1] == {
        "interval_start": datetime(2018, 11, 5, 5),
        "interval_end": datetime(2018, 11, 6, 5),
        "interval_start_ms": 1_541_394_000_000,
        "interval_end_ms": 1_541_480_400_000,
        "run_id": run_id,
    }
    assert delete[1] == insert[1]


def test_failed_insert_rolls_back_the_delete(monkeypatch):
    conn = warehouse(fail_on="INSERT")
    patch_postgres_hook(monkeypatch, conn)
    with pytest.raises(psycopg2.errors.NotNullViolation):
        run(make_operator())
    assert [s.split()[0] for s in conn.cursor_obj.statements] == ["LOCK", "DELETE", "INSERT"]
    assert conn.events == ["rollback", "close"]


def test_on_redshift_the_lock_has_no_mode(monkeypatch):
    set_connection(monkeypatch, "warehouse", "redshift")
    conn = warehouse()
    patch_postgres_hook(monkeypatch, conn)
    run(make_operator())
    assert conn.cursor_obj.statements[0] == 'LOCK "public"."songplays"'


def test_a_table_the_query_names_but_was_not_given_fails_before_any_write(monkeypatch):
    conn = warehouse()
    asked = patch_postgres_hook(monkeypatch, conn)
    with pytest.raises(ValueError, match="names a table it was not given: 'staged'"):
        run(make_operator(tables={}))
    assert asked == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"interval_column": "start_time; DROP TABLE users"}, "not a valid SQL identifier"),
        ({"table": "nope"}, "'nope' is not declared in include/sql/create_tables.sql"),
        ({"tables": {"conn_id": STAGED}}, r"table argument names \['conn_id'\] are reserved"),
    ],
)
def test_bad_arguments_fail_at_parse_time(kwargs, message):
    arguments = {"task_id": "t", "conn_id": "wh", "table": "songplays", "sql": "SELECT 1", **kwargs}
    with pytest.raises((ValueError, KeyError), match=message):
        LoadFactOperator(**arguments)


def test_empty_interval_is_refused_before_connecting(monkeypatch):
    conn = warehouse()
    asked = patch_postgres_hook(monkeypatch, conn)
    moment = pendulum.datetime(2018, 11, 5, tz="UTC")
    with pytest.raises(ValueError, match="empty data interval"):
        run(make_operator(), {"data_interval_start": moment, "data_interval_end": moment})
    assert asked == []
