"""Unit tests for LoadDimensionOperator (an astro run_raw_sql task) against a fake warehouse."""

from __future__ import annotations

import logging
from datetime import datetime

import pendulum
import pytest
from astro.sql import RawSQLOperator
from astro.table import Metadata, Table

from operators.load_dimension import LoadDimensionOperator
from sparkify.sql import read_sql
from tests.fakes import FakeConnection, FakeCursor, Result, patch_postgres_hook, set_connection

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
USER_COLUMNS = ["user_id", "first_name", "last_name", "gender", "level", "last_play_at"]
SONG_COLUMNS = ["song_id", "title", "artist_id", "year", "duration"]
TIME_COLUMNS = ["start_time", "hour", "day", "week", "month", "year", "weekday"]
STAGED_SONGS = Table(name="staging_songs", conn_id="wh", metadata=Metadata(schema="public"))
STAGED_EVENTS = Table(name="staging_events", conn_id="wh", metadata=Metadata(schema="dwh"))


@pytest.fixture(autouse=True)
def postgres_warehouse(monkeypatch):
    """The warehouse connections are PostgreSQL ones (their type picks the LOCK's syntax)."""
    for conn_id in ("warehouse", "wh"):
        set_connection(monkeypatch, conn_id, "postgres")


def lock(*tables: str) -> tuple[str, None]:
    return (f"LOCK TABLE {', '.join(tables)} IN EXCLUSIVE MODE", None)


def warehouse(total: int = 12) -> FakeConnection:
    def respond(sql, params):
        if sql.startswith("SELECT COUNT(*)"):
            return Result(rows=[(total,)])
        return None

    return FakeConnection(FakeCursor(respond))


def run(operator: LoadDimensionOperator, context: dict = CONTEXT) -> Table:
    """As Airflow runs a task: render its templated fields, then execute."""
    operator.render_template_fields(context)
    return operator.execute(context)


def songs_operator(**kwargs) -> LoadDimensionOperator:
    return LoadDimensionOperator(
        task_id="load_songs", conn_id="warehouse", table="songs",
        sql="SELECT * FROM {{ staging_songs }} s;\n", tables={"staging_songs": STAGED_SONGS},
        **kwargs,
    )  # fmt: skip


def test_is_an_astro_run_raw_sql_task():
    operator = songs_operator()
    assert isinstance(operator, RawSQLOperator)
    assert LoadDimensionOperator.template_fields == ("sql", "op_kwargs")
    assert operator.outlets == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"mode": "append"},
            "mode must be one of 'truncate-insert', 'upsert', 'interval-replace', 'history', "
            "not 'append'",
        ),
        ({"mode": "upsert"}, "users: mode 'upsert' needs key_columns"),
        ({"version_column": "last_play_at"}, "users: version_column applies to mode 'upsert' only"),
        (
            {"mode": "truncate-insert", "key_columns": ["user_id"], "version_column": "v"},
            "version_column applies to mode 'upsert' only",
        ),
        (
            {"mode": "upsert", "key_columns": ["user_id"], "version_column": "updated_at"},
            r"users: \['updated_at'\] are not columns of the table",
        ),
        ({"mode": "upsert", "key_columns": ["id"]}, r"users: \['id'\] are not columns"),
        ({"mode": "interval-replace"}, "users: mode 'interval-replace' needs interval_column"),
        ({"interval_column": "last_play_at"}, "interval_column applies to modes 'interval-repl"),
        (
            {"mode": "interval-replace", "interval_column": "played_at"},
            "users: 'played_at' is not a column of the table",
        ),
        (
            {"mode": "history", "interval_column": "last_play_at"},
            "users: mode 'history' needs history_table and rebuild_sql",
        ),
        (
            {"mode": "history", "interval_column": "last_play_at",
             "history_table": "users_history"},
            "users: mode 'history' needs history_table and rebuild_sql",
        ),
        (
            {"history_table": "users_history", "rebuild_sql": "users.sql"},
            "history_table and rebuild_sql apply to mode 'history' only",
        ),
        (
            {"mode": "history", "interval_column": "start_time", "history_table": "users_history",
             "rebuild_sql": "users.sql"},
            "users_history: 'start_time' is not a column of the table",
        ),
        (
            {"mode": "history", "interval_column": "last_play_at", "history_table": "nope",
             "rebuild_sql": "users.sql"},
            "'nope' is not declared in include/sql/create_tables.sql",
        ),
        (
            {"mode": "history", "interval_column": "last_play_at", "history_table": "users_history",
             "rebuild_sql": "SELECT * FROM {{ staging_events }}"},
            "the query names a table it was not given",
        ),
    ],
)  # fmt: skip
def test_constructor_validation(kwargs, message):
    with pytest.raises((ValueError, KeyError), match=message):
        LoadDimensionOperator(task_id="t", conn_id="wh", table="users", sql="SELECT 1", **kwargs)


def test_truncate_insert(monkeypatch, caplog):
    conn = warehouse(total=12)
    asked = patch_postgres_hook(monkeypatch, conn)
    with caplog.at_level(logging.INFO):
        loaded = run(songs_operator())

    assert loaded == Table(name="songs", conn_id="warehouse", metadata=Metadata(schema="public"))
    assert asked == ["warehouse"]
    cols = ", ".join(f'"{c}"' for c in SONG_COLUMNS)
    assert conn.cursor_obj.executed == [
        lock('"public"."songs"'),
        ('DELETE FROM "public"."songs"', PARAMS),
        (
            f'INSERT INTO "public"."songs" ({cols}) SELECT {cols} '
            'FROM (SELECT * FROM "public"."staging_songs" s) AS src',
            PARAMS,
        ),
        ('SELECT COUNT(*) FROM "public"."songs"', None),
    ]
    assert conn.events == ["commit", "close"]
    assert "songs: 12 rows after the load" in caplog.text


def test_upsert_with_version_column(monkeypatch, caplog):
    conn = warehouse(total=96)
    patch_postgres_hook(monkeypatch, conn)
    operator = LoadDimensionOperator(
        task_id="load_users", conn_id="warehouse", table="users", sql="users_history.sql",
        tables={"staging_events": STAGED_EVENTS}, mode="upsert", key_columns=["user_id"],
        version_column="last_play_at", schema="dwh",
    )  # fmt: skip
    with caplog.at_level(logging.INFO):
        run(operator)

    query = read_sql("users_history").replace("{{ staging_events }}", '"dwh"."staging_events"')
    cols = ", ".join(f'"{c}"' for c in USER_COLUMNS)
    executed = conn.cursor_obj.executed
    assert executed[0] == lock('"dwh"."users"')
    assert [sql for sql, _ in executed[1:]] == [
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
    assert all(params == PARAMS for _, params in executed[1:-1])
    assert "e.run_id = %(run_id)s" in executed[2][0]
    assert conn.events == ["commit", "close"]
    assert "users: 96 rows after the load" in caplog.text


def test_upsert_without_version_column(monkeypatch):
    conn = warehouse()
    patch_postgres_hook(monkeypatch, conn)
    run(
        LoadDimensionOperator(
            task_id="load_time", conn_id="warehouse", table="time", sql="SELECT 1",
            mode="upsert", key_columns=["start_time"],
        )
    )  # fmt: skip
    assert conn.cursor_obj.statements[0] == lock('"public"."time"')[0]
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


def test_statement_error_rolls_back(monkeypatch):
    def respond(sql, params):
        if sql.startswith("INSERT"):
            raise RuntimeError("disk full")
        return None

    conn = FakeConnection(FakeCursor(respond))
    patch_postgres_hook(monkeypatch, conn)
    operator = LoadDimensionOperator(task_id="t", conn_id="wh", table="songs", sql="SELECT 1")
    with pytest.raises(RuntimeError, match="disk full"):
        run(operator)
    assert [s.split()[0] for s in conn.cursor_obj.statements] == ["LOCK", "DELETE", "INSERT"]
    assert conn.events == ["rollback", "close"]


def test_interval_replace_deletes_the_interval_then_inserts(monkeypatch):
    """The time table as the DAG loads it: the interval's rows become the query's."""
    conn = warehouse()
    patch_postgres_hook(monkeypatch, conn)
    songplays = Table(name="songplays", conn_id="wh", metadata=Metadata(schema="public"))
    run(
        LoadDimensionOperator(
            task_id="load_time", conn_id="warehouse", table="time", sql="time.sql",
            tables={"songplays": songplays}, mode="interval-replace", interval_column="start_time",
        )
    )  # fmt: skip
    query = read_sql("time").replace("{{ songplays }}", '"public"."songplays"')
    cols = ", ".join(f'"{c}"' for c in TIME_COLUMNS)
    assert conn.cursor_obj.executed == [
        lock('"public"."time"'),
        ('DELETE FROM "public"."time" '
         'WHERE "start_time" >= %(interval_start)s AND "start_time" < %(interval_end)s', PARAMS),
        (f'INSERT INTO "public"."time" ({cols}) SELECT {cols} FROM ({query}) AS src', PARAMS),
        ('SELECT COUNT(*) FROM "public"."time"', None),
    ]  # fmt: skip
    assert conn.events == ["commit", "close"]


def test_history_replaces_the_interval_of_the_history_then_rebuilds_the_table(monkeypatch, caplog):
    """The users table as the DAG loads it, all in one transaction."""
    conn = warehouse(total=40)
    patch_postgres_hook(monkeypatch, conn)
    operator = LoadDimensionOperator(
        task_id="load_users", conn_id="warehouse", table="users", sql="users_history.sql",
        tables={"staging_events": STAGED_EVENTS}, mode="history", history_table="users_history",
        interval_column="last_play_at", rebuild_sql="users.sql", schema="dwh",
    )  # fmt: skip
    with caplog.at_level(logging.INFO):
        loaded = run(operator)

    assert loaded.name == "users" and operator.history_columns == USER_COLUMNS
    interval = read_sql("users_history").replace("{{ staging_events }}", '"dwh"."staging_events"')
    rebuild = read_sql("users").replace("{{ users_history }}", '"dwh"."users_history"')
    cols = ", ".join(f'"{c}"' for c in USER_COLUMNS)
    assert conn.cursor_obj.executed == [
        # Both tables the load writes, in name order, before anything is written.
        lock('"dwh"."users"', '"dwh"."users_history"'),
        ('DELETE FROM "dwh"."users_history" '
         'WHERE "last_play_at" >= %(interval_start)s AND "last_play_at" < %(interval_end)s',
         PARAMS),
        (f'INSERT INTO "dwh"."users_history" ({cols}) SELECT {cols} FROM ({interval}) AS src',
         PARAMS),
        ('DELETE FROM "dwh"."users"', PARAMS),
        (f'INSERT INTO "dwh"."users" ({cols}) SELECT {cols} FROM ({rebuild}) AS src', PARAMS),
        ('SELECT COUNT(*) FROM "dwh"."users"', None),
    ]  # fmt: skip
    assert conn.events == ["commit", "close"]
    assert "users: 40 rows after the load" in caplog.text


def test_written_tables_are_the_dimension_and_in_history_mode_its_history():
    plain = songs_operator()
    assert plain.written_tables() == ['"public"."songs"']
    history = LoadDimensionOperator(
        task_id="load_users", conn_id="wh", table="users", sql="users_history.sql",
        tables={"staging_events": STAGED_EVENTS}, mode="history", history_table="users_history",
        interval_column="last_play_at", rebuild_sql="users.sql", schema="dwh",
    )  # fmt: skip
    assert history.written_tables() == ['"dwh"."users"', '"dwh"."users_history"']


def test_on_redshift_the_lock_has_no_mode(monkeypatch):
    set_connection(monkeypatch, "warehouse", "redshift")
    conn = warehouse()
    patch_postgres_hook(monkeypatch, conn)
    run(songs_operator())
    assert conn.cursor_obj.statements[0] == 'LOCK "public"."songs"'
