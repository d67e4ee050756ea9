"""Unit tests for LoadFactOperator against a fake warehouse connection."""

from __future__ import annotations

import logging
from datetime import datetime

import pendulum
import psycopg2
import pytest

from operators.load_fact import LoadFactOperator
from sparkify.sql import read_sql
from tests.fakes import FakeConnection, FakeCursor, Result, patch_postgres_hook

COLUMNS = ["songplay_id", "start_time", "user_id", "level", "song_id", "artist_id",
           "session_id", "location", "user_agent"]  # fmt: skip
PARAMS = {
    "interval_start": datetime(2018, 11, 5),
    "interval_end": datetime(2018, 11, 6),
    "interval_start_ms": 1_541_376_000_000,
    "interval_end_ms": 1_541_462_400_000,
}
CONTEXT = {
    "data_interval_start": pendulum.datetime(2018, 11, 5, tz="UTC"),
    "data_interval_end": pendulum.datetime(2018, 11, 6, tz="UTC"),
    "run_id": "scheduled__2018-11-05T00:00:00+00:00",
}


def warehouse(inserted: int = 42, fail_on: str | None = None) -> FakeConnection:
    def respond(sql, params):
        if fail_on and sql.startswith(fail_on):
            raise psycopg2.errors.NotNullViolation('null value in column "start_time"')
        if sql.endswith("LIMIT 0"):
            return Result(description=[(c, None) for c in COLUMNS])
        if sql.startswith("INSERT"):
            return Result(rowcount=inserted)
        return Result(rowcount=3)

    return FakeConnection(FakeCursor(respond))


def make_operator(**kwargs) -> LoadFactOperator:
    return LoadFactOperator(
        task_id="load_songplays", conn_id="warehouse", table="songplays",
        sql="SELECT * FROM staged;  \n", **kwargs,
    )  # fmt: skip


def test_template_fields():
    assert LoadFactOperator.template_fields == ("sql",)
    assert LoadFactOperator.template_ext == (".sql",)


def test_defaults():
    operator = make_operator()
    assert (operator.interval_column, operator.schema) == ("start_time", "public")


def test_replaces_the_interval_in_one_transaction(monkeypatch, caplog):
    conn = warehouse(inserted=42)
    asked = patch_postgres_hook(monkeypatch, conn)
    with caplog.at_level(logging.INFO):
        inserted = make_operator().execute(CONTEXT)

    assert inserted == 42
    assert asked == ["warehouse"]
    cols = ", ".join(f'"{c}"' for c in COLUMNS)
    assert conn.cursor_obj.executed == [
        ("SELECT * FROM (SELECT * FROM staged) AS src LIMIT 0", PARAMS),
        (
            'DELETE FROM "public"."songplays" '
            'WHERE "start_time" >= %(interval_start)s AND "start_time" < %(interval_end)s',
            PARAMS,
        ),
        (
            f'INSERT INTO "public"."songplays" ({cols}) SELECT {cols} '
            "FROM (SELECT * FROM staged) AS src",
            PARAMS,
        ),
    ]
    assert conn.events == ["commit", "close"]
    assert (
        'Loaded 42 rows into "public"."songplays" for 2018-11-05 00:00:00 to 2018-11-06 00:00:00'
        in caplog.text
    )


def test_real_query_and_non_utc_interval(monkeypatch):
    conn = warehouse()
    patch_postgres_hook(monkeypatch, conn)
    start = pendulum.datetime(2018, 11, 5, tz="America/New_York")
    operator = LoadFactOperator(
        task_id="load", conn_id="warehouse", table="songplays", sql=read_sql("songplays"),
        interval_column="start_time", schema="analytics",
    )  # fmt: skip
    operator.execute({"data_interval_start": start, "data_interval_end": start.add(days=1)})

    probe, delete, insert = conn.cursor_obj.executed
    assert probe[0] == f"SELECT * FROM ({read_sql('songplays')}) AS src LIMIT 0"
    assert delete[0].startswith('DELETE FROM "analytics"."songplays" WHERE')
    assert insert[0].endswith(f"FROM ({read_sql('songplays')}) AS src")
    assert delete[1] == {
        "interval_start": datetime(2018, 11, 5, 5),
        "interval_end": datetime(2018, 11, 6, 5),
        "interval_start_ms": 1_541_394_000_000,
        "interval_end_ms": 1_541_480_400_000,
    }
    assert probe[1] == delete[1] == insert[1]


def test_failed_insert_rolls_back_the_delete(monkeypatch):
    conn = warehouse(fail_on="INSERT")
    patch_postgres_hook(monkeypatch, conn)
    with pytest.raises(psycopg2.errors.NotNullViolation):
        make_operator().execute(CONTEXT)
    assert [s.split()[0] for s in conn.cursor_obj.statements] == ["SELECT", "DELETE", "INSERT"]
    assert conn.events == ["rollback", "close"]


def test_invalid_interval_column_fails_before_any_write(monkeypatch):
    conn = warehouse()
    patch_postgres_hook(monkeypatch, conn)
    with pytest.raises(ValueError, match="not a valid SQL identifier"):
        make_operator(interval_column="start_time; DROP TABLE users").execute(CONTEXT)
    assert not any(s.startswith(("DELETE", "INSERT")) for s in conn.cursor_obj.statements)
    assert conn.commits == 0


def test_empty_interval_is_refused_before_connecting(monkeypatch):
    conn = warehouse()
    asked = patch_postgres_hook(monkeypatch, conn)
    moment = pendulum.datetime(2018, 11, 5, tz="UTC")
    with pytest.raises(ValueError, match="empty data interval"):
        make_operator().execute({"data_interval_start": moment, "data_interval_end": moment})
    assert asked == []
