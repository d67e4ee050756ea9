"""Unit tests for LoadDimensionOperator against a fake warehouse connection."""

from __future__ import annotations

import logging
from datetime import datetime

import pendulum
import pytest

from operators.load_dimension import LoadDimensionOperator
from sparkify.sql import read_sql
from tests.fakes import FakeConnection, FakeCursor, Result, patch_postgres_hook

PARAMS = {
    "interval_start": datetime(2018, 11, 5),
    "interval_end": datetime(2018, 11, 6),
    "interval_start_ms": 1_541_376_000_000,
    "interval_end_ms": 1_541_462_400_000,
}
CONTEXT = {
    "data_interval_start": pendulum.datetime(2018, 11, 5, tz="UTC"),
    "data_interval_end": pendulum.datetime(2018, 11, 6, tz="UTC"),
}
USER_COLUMNS = ["user_id", "first_name", "last_name", "gender", "level", "last_play_at"]


def warehouse(columns: list[str], total: int = 12) -> FakeConnection:
    def respond(sql, params):
        if sql.endswith("LIMIT 0"):
            return Result(description=[(c, None) for c in columns])
        if sql.startswith("SELECT COUNT(*)"):
            return Result(rows=[(total,)])
        return None

    return FakeConnection(FakeCursor(respond))


def test_template_fields():
    assert LoadDimensionOperator.template_fields == ("sql",)
    assert LoadDimensionOperator.template_ext == (".sql",)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "append"}, "mode must be 'truncate-insert' or 'upsert', not 'append'"),
        ({"mode": "upsert"}, "users: mode 'upsert' needs key_columns"),
        ({"version_column": "last_play_at"}, "users: version_column applies to mode 'upsert' only"),
        (
            {"mode": "truncate-insert", "key_columns": ["user_id"], "version_column": "v"},
            "version_column applies to mode 'upsert' only",
        ),
    ],
)
def test_constructor_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LoadDimensionOperator(task_id="t", conn_id="wh", table="users", sql="SELECT 1", **kwargs)


def test_truncate_insert(monkeypatch, caplog):
    conn = warehouse(["song_id", "title"], total=12)
    asked = patch_postgres_hook(monkeypatch, conn)
    operator = LoadDimensionOperator(
        task_id="load_songs", conn_id="warehouse", table="songs", sql="SELECT * FROM s;\n"
    )
    with caplog.at_level(logging.INFO):
        assert operator.execute(CONTEXT) is None

    assert asked == ["warehouse"]
    assert conn.cursor_obj.executed == [
        ("SELECT * FROM (SELECT * FROM s) AS src LIMIT 0", PARAMS),
        ('DELETE FROM "public"."songs"', PARAMS),
        (
            'INSERT INTO "public"."songs" ("song_id", "title") SELECT "song_id", "title" '
            "FROM (SELECT * FROM s) AS src",
            PARAMS,
        ),
        ('SELECT COUNT(*) FROM "public"."songs"', None),
    ]
    assert conn.events == ["commit", "close"]
    assert "songs (truncate-insert): 12 rows after the load" in caplog.text


def test_upsert_with_version_column(monkeypatch, caplog):
    conn = warehouse(USER_COLUMNS, total=96)
    patch_postgres_hook(monkeypatch, conn)
    operator = LoadDimensionOperator(
        task_id="load_users", conn_id="warehouse", table="users", sql=read_sql("users"),
        mode="upsert", key_columns=["user_id"], version_column="last_play_at", schema="dwh",
    )  # fmt: skip
    with caplog.at_level(logging.INFO):
        operator.execute(CONTEXT)

    query = read_sql("users")
    cols = ", ".join(f'"{c}"' for c in USER_COLUMNS)
    executed = conn.cursor_obj.executed
    assert [sql for sql, _ in executed] == [
        f"SELECT * FROM ({query}) AS src LIMIT 0",
        'DROP TABLE IF EXISTS "incoming_users"',
        f'CREATE TEMPORARY TABLE "incoming_users" AS SELECT {cols} FROM ({query}) AS src',
        'DELETE FROM "dwh"."users" USING "incoming_users" AS i '
        'WHERE "dwh"."users"."user_id" = i."user_id" '
        'AND "dwh"."users"."last_play_at" <= i."last_play_at"',
        f'INSERT INTO "dwh"."users" ({cols}) SELECT {cols} FROM "incoming_users" AS i '
        'WHERE NOT EXISTS (SELECT 1 FROM "dwh"."users" AS t WHERE t."user_id" = i."user_id")',
        'DROP TABLE "incoming_users"',
        'SELECT COUNT(*) FROM "dwh"."users"',
    ]
    assert all(params == PARAMS for _, params in executed[:-1])
    assert conn.events == ["commit", "close"]
    assert "users (upsert): 96 rows after the load" in caplog.text


def test_upsert_without_version_column(monkeypatch):
    conn = warehouse(["start_time", "hour"])
    patch_postgres_hook(monkeypatch, conn)
    LoadDimensionOperator(
        task_id="load_time", conn_id="warehouse", table="time", sql="SELECT 1",
        mode="upsert", key_columns=["start_time"],
    ).execute(CONTEXT)  # fmt: skip
    delete = conn.cursor_obj.statements[3]
    assert delete == (
        'DELETE FROM "public"."time" USING "incoming_time" AS i '
        'WHERE "public"."time"."start_time" = i."start_time"'
    )


def test_statements_for_given_columns():
    operator = LoadDimensionOperator(
        task_id="t", conn_id="wh", table="artists", sql="SELECT a;", mode="truncate-insert"
    )
    assert operator.statements(["artist_id"]) == [
        'DELETE FROM "public"."artists"',
        'INSERT INTO "public"."artists" ("artist_id") SELECT "artist_id" FROM (SELECT a) AS src',
    ]


def test_query_missing_the_version_column_fails_and_rolls_back(monkeypatch):
    conn = warehouse(["user_id", "level"])
    patch_postgres_hook(monkeypatch, conn)
    operator = LoadDimensionOperator(
        task_id="load_users", conn_id="warehouse", table="users", sql="SELECT 1",
        mode="upsert", key_columns=["user_id"], version_column="last_play_at",
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"\['last_play_at'\] are not in the query's columns"):
        operator.execute(CONTEXT)
    assert len(conn.cursor_obj.executed) == 1  # only the probe ran
    assert conn.events == ["rollback", "close"]


def test_statement_error_rolls_back(monkeypatch):
    def respond(sql, params):
        if sql.endswith("LIMIT 0"):
            return Result(description=[("song_id", None)])
        if sql.startswith("INSERT"):
            raise RuntimeError("disk full")
        return None

    conn = FakeConnection(FakeCursor(respond))
    patch_postgres_hook(monkeypatch, conn)
    operator = LoadDimensionOperator(task_id="t", conn_id="wh", table="songs", sql="SELECT 1")
    with pytest.raises(RuntimeError, match="disk full"):
        operator.execute(CONTEXT)
    assert conn.events == ["rollback", "close"]
