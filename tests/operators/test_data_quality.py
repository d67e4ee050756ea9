"""Unit tests for DataQualityOperator against a fake warehouse connection."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from types import SimpleNamespace

import pendulum
import psycopg2
import pytest
from airflow.exceptions import AirflowException, AirflowFailException

from operators.data_quality import DataQualityOperator
from tests.fakes import FakeConnection, FakeCursor, Result, patch_postgres_hook, set_connection

RUN_ID = "scheduled__2018-11-05T00:00:00+00:00"
INTERVAL = {
    "interval_start": datetime(2018, 11, 5),
    "interval_end": datetime(2018, 11, 6),
    "interval_start_ms": 1_541_376_000_000,
    "interval_end_ms": 1_541_462_400_000,
}
PARAMS = {
    **INTERVAL,
    **{key.replace("interval_", "days_"): value for key, value in INTERVAL.items()},
    "run_id": RUN_ID,
}
CONTEXT = {
    "data_interval_start": pendulum.datetime(2018, 11, 5, tz="UTC"),
    "data_interval_end": pendulum.datetime(2018, 11, 6, tz="UTC"),
    "run_id": RUN_ID,
    "ti": SimpleNamespace(try_number=2),
}
RESULTS_COLUMNS = [
    "run_id", "check_name", "table_name", "passed", "observed", "expected", "checked_at",
    "try_number",
]  # fmt: skip
INSERT_RESULTS = (
    'INSERT INTO "public"."data_quality_results"\n'
    "    (run_id, try_number, check_name, table_name, passed, observed, expected, checked_at)\n"
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
)
FORGET_ATTEMPT = 'DELETE FROM "public"."data_quality_results" WHERE run_id = %s AND try_number = %s'


def code(sql: str) -> str:
    """A statement without its leading comment lines (the .sql files explain themselves)."""
    return "\n".join(line for line in sql.splitlines() if not line.startswith("--"))


def results_table_columns(sql, params, columns=RESULTS_COLUMNS):
    """The information_schema answer for the results table, or None for another query."""
    if "information_schema.columns" in sql:
        return Result(rows=[(c, "text", True, None) for c in columns])
    return None


CHECKS = [
    {"name": "users_has_rows", "table": "users", "kind": "row_count_min"},
    {"name": "users_key_not_null", "table": "users", "kind": "not_null", "columns": ["user_id"]},
    {"name": "songplays_level_accepted", "table": "songplays", "kind": "accepted_values",
     "column": "level", "values": ["free", "paid"], "interval_column": "start_time"},
    {"name": "plays_per_user", "table": "songplays", "sql": "SELECT 30 /* plays */",
     "comparison": "between", "expected": 0, "expected_max": 10},
    {"name": "missing_table_rows", "table": "missing_table", "kind": "row_count_min"},
    {"name": "no_rows_returned", "table": "songs", "sql": "SELECT 1 WHERE false /* none */",
     "expected": 1},
]  # fmt: skip


def respond(sql, params):
    if columns := results_table_columns(sql, params):
        return columns
    if "missing_table" in sql:
        raise psycopg2.errors.UndefinedTable(
            'relation "public.missing_table" does not exist\nLINE 1: SELECT COUNT(*) FROM ...\n'
        )
    if "/* none */" in sql:
        return Result(rows=[])
    if "/* plays */" in sql:
        return Result(rows=[(30,)])
    if "IS NULL" in sql:
        return Result(rows=[(3,)])
    if "NOT IN" in sql:
        return Result(rows=[(0,)])
    return Result(rows=[(5,)])


@pytest.fixture(autouse=True)
def postgres_warehouse(monkeypatch):
    """The warehouse connection is PostgreSQL unless a test says Redshift."""
    set_connection(monkeypatch, "warehouse", "postgres", host="warehouse.example")


def make_operator(checks=CHECKS, **kwargs) -> DataQualityOperator:
    return DataQualityOperator(task_id="run_checks", conn_id="warehouse", checks=checks, **kwargs)


def test_template_fields():
    assert DataQualityOperator.template_fields == ("checks", "tables")


def test_constructor_refuses_no_checks():
    with pytest.raises(ValueError, match="needs at least one check"):
        make_operator(checks=[])


def test_constructor_refuses_malformed_checks_all_together():
    with pytest.raises(ValueError) as info:
        make_operator(checks=[
            {"name": "a", "table": "users"},
            {"name": "b", "table": "users", "kind": "value_range", "column": "x"},
        ])  # fmt: skip
    assert "check 'a'" in str(info.value) and "check 'b'" in str(info.value)


def test_all_failures_in_one_exception_and_every_result_recorded(monkeypatch, caplog):
    conn = FakeConnection(FakeCursor(respond))
    asked = patch_postgres_hook(monkeypatch, conn)
    before = datetime.now(UTC).replace(tzinfo=None)

    with caplog.at_level(logging.INFO), pytest.raises(AirflowFailException) as info:
        make_operator().execute(CONTEXT)

    assert asked == ["warehouse"]
    assert str(info.value) == (
        "4 of 6 data quality checks failed:\n"
        "- FAILED: users_key_not_null on users: observed 3, expected == 0\n"
        "- FAILED: plays_per_user on songplays: observed 30, expected between 0 and 10\n"
        "- FAILED: missing_table_rows on missing_table: observed error: "
        'relation "public.missing_table" does not exist, expected >= 1\n'
        "- FAILED: no_rows_returned on songs: observed None, expected == 1"
    )

    # every check ran, in order, with the interval, the days, the run and its own parameters
    cursor = conn.cursor_obj
    assert len(cursor.executed) == 6 + 2
    assert cursor.executed[0] == ('SELECT COUNT(*) FROM "public"."users"', PARAMS)
    assert cursor.executed[2][1] == {**PARAMS, "accepted_0": "free", "accepted_1": "paid"}
    assert cursor.executed[3] == ("SELECT 30 /* plays */", PARAMS)

    # this attempt's earlier results forgotten, then recorded once, one row per check,
    # with the try number, and committed despite the failures
    assert cursor.executed[6][1] == ("public", "data_quality_results")
    assert (code(cursor.executed[7][0]), cursor.executed[7][1]) == (FORGET_ATTEMPT, (RUN_ID, 2))
    ((statement, rows),) = cursor.executemany_calls
    assert code(statement) == INSERT_RESULTS
    checked_at = rows[0][7]
    assert [row[:7] for row in rows] == [
        (RUN_ID, 2, "users_has_rows", "users", True, "5", ">= 1"),
        (RUN_ID, 2, "users_key_not_null", "users", False, "3", "== 0"),
        (RUN_ID, 2, "songplays_level_accepted", "songplays", True, "0", "== 0"),
        (RUN_ID, 2, "plays_per_user", "songplays", False, "30", "between 0 and 10"),
        (RUN_ID, 2, "missing_table_rows", "missing_table", False,
         'error: relation "public.missing_table" does not exist', ">= 1"),
        (RUN_ID, 2, "no_rows_returned", "songs", False, "None", "== 1"),
    ]  # fmt: skip
    assert all(row[7] == checked_at for row in rows)
    after = datetime.now(UTC).replace(tzinfo=None)
    assert checked_at.tzinfo is None
    assert before <= checked_at <= after

    # the failed statement was rolled back so the next ones could run; results committed
    assert conn.events == ["rollback", "commit", "close"]
    assert "passed: users_has_rows on users: observed 5, expected >= 1" in caplog.text
    assert "FAILED: users_key_not_null on users: observed 3, expected == 0" in caplog.text


def test_all_passing_returns_the_results(monkeypatch, caplog):
    conn = FakeConnection(
        FakeCursor(
            lambda sql, params: (
                results_table_columns(sql, params) or Result(rows=[(0 if "IS NULL" in sql else 7,)])
            )
        )
    )
    patch_postgres_hook(monkeypatch, conn)
    with caplog.at_level(logging.INFO):
        results = make_operator(checks=CHECKS[:2], schema="dwh").execute(CONTEXT)
    assert results == [
        {"name": "users_has_rows", "table": "users", "passed": True, "observed": "7",
         "expected": ">= 1"},
        {"name": "users_key_not_null", "table": "users", "passed": True, "observed": "0",
         "expected": "== 0"},
    ]  # fmt: skip
    assert conn.cursor_obj.statements[0] == 'SELECT COUNT(*) FROM "dwh"."users"'
    ((statement, rows),) = conn.cursor_obj.executemany_calls
    assert code(statement).startswith('INSERT INTO "dwh"."data_quality_results"\n')
    assert len(rows) == 2
    assert conn.events == ["commit", "close"]
    assert "All 2 data quality checks passed" in caplog.text


def test_results_table_none_records_nothing(monkeypatch):
    conn = FakeConnection(FakeCursor(lambda sql, params: Result(rows=[(1,)])))
    patch_postgres_hook(monkeypatch, conn)
    make_operator(checks=CHECKS[:1], results_table=None).execute(CONTEXT)
    assert conn.cursor_obj.executemany_calls == []


def test_long_error_is_truncated_in_the_record(monkeypatch):
    def failing(sql, params):
        if sql.startswith("SELECT COUNT(*)"):
            raise RuntimeError("x" * 3000)
        return results_table_columns(sql, params)

    conn = FakeConnection(FakeCursor(failing))
    patch_postgres_hook(monkeypatch, conn)
    with pytest.raises(AirflowFailException, match="1 of 1 data quality checks failed"):
        make_operator(checks=CHECKS[:1]).execute(CONTEXT)
    ((_, rows),) = conn.cursor_obj.executemany_calls
    assert rows[0][5] == ("error: " + "x" * 3000)[:1024]


def test_error_without_message_is_still_a_failed_check(monkeypatch):
    def respond_empty_error(sql, params):
        if '"users"' in sql:
            raise psycopg2.OperationalError()
        return results_table_columns(sql, params) or Result(rows=[(0,)])

    conn = FakeConnection(FakeCursor(respond_empty_error))
    patch_postgres_hook(monkeypatch, conn)
    checks = [
        {"name": "users_has_rows", "table": "users", "kind": "row_count_min"},
        {"name": "songs_key_not_null", "table": "songs", "kind": "not_null", "columns": "song_id"},
    ]
    with pytest.raises(AirflowException, match="FAILED: users_has_rows on users: observed error"):
        make_operator(checks=checks).execute(CONTEXT)
    assert [sql for sql in conn.cursor_obj.statements if sql.startswith("SELECT COUNT")] == [
        'SELECT COUNT(*) FROM "public"."users"',
        'SELECT COUNT(*) FROM "public"."songs" WHERE ("song_id" IS NULL)',
    ]


def test_failed_checks_fail_without_retry_but_an_unreachable_warehouse_retries(monkeypatch):
    """A retry would check the same data: AirflowFailException, which Airflow does not retry
    (and whose on_failure_callback, the alert, fires at once); a lost connection is not one."""
    patch_postgres_hook(monkeypatch, FakeConnection(FakeCursor(respond)))
    with pytest.raises(AirflowException) as info:
        make_operator().execute(CONTEXT)
    assert type(info.value) is AirflowFailException

    def unreachable(self):
        raise psycopg2.OperationalError("could not connect to server")

    from airflow.providers.postgres.hooks.postgres import PostgresHook

    monkeypatch.setattr(PostgresHook, "get_conn", unreachable)
    with pytest.raises(Exception, match="cannot connect to the warehouse") as lost:
        make_operator().execute(CONTEXT)
    assert not isinstance(lost.value, AirflowFailException)


def test_a_results_table_without_try_number_gets_the_column(monkeypatch):
    old_columns = RESULTS_COLUMNS[:-1]
    conn = FakeConnection(
        FakeCursor(
            lambda sql, params: (
                results_table_columns(sql, params, old_columns) or Result(rows=[(1,)])
            )
        )
    )
    patch_postgres_hook(monkeypatch, conn)
    make_operator(checks=CHECKS[:1]).execute(CONTEXT)
    assert [code(sql) for sql in conn.cursor_obj.statements[2:]] == [
        'ALTER TABLE "public"."data_quality_results" ADD COLUMN try_number INTEGER',
        FORGET_ATTEMPT,
    ]
    ((_, rows),) = conn.cursor_obj.executemany_calls
    assert rows[0][:2] == (RUN_ID, 2)


def test_a_check_with_the_expected_value_in_its_query_shows_both(monkeypatch):
    check = {"name": "plays_staged", "table": "songplays", "sql": "SELECT 0, 412 /* both */",
             "expected_in_query": True}  # fmt: skip
    conn = FakeConnection(
        FakeCursor(lambda sql, params: results_table_columns(sql, params) or Result([(0, 412)]))
    )
    patch_postgres_hook(monkeypatch, conn)
    with pytest.raises(AirflowFailException) as info:
        make_operator(checks=[check]).execute(CONTEXT)
    assert str(info.value).endswith(
        "FAILED: plays_staged on songplays: observed 0, expected == 412"
    )
    ((_, rows),) = conn.cursor_obj.executemany_calls
    assert rows[0][4:7] == (False, "0", "== 412")


def test_on_redshift_the_results_table_is_locked_before_anything_runs(monkeypatch):
    # Overlapping runs write data_quality_results; Redshift may abort one of two
    # unlocked writers (serializable isolation), PostgreSQL needs no lock for own rows.
    set_connection(monkeypatch, "warehouse", "redshift", host="cluster.example")
    conn = FakeConnection(FakeCursor(respond))
    patch_postgres_hook(monkeypatch, conn)
    with pytest.raises(AirflowFailException):
        make_operator().execute(CONTEXT)
    statements = conn.cursor_obj.statements
    assert statements[0] == 'LOCK "public"."data_quality_results"'
    assert not any(s.startswith("LOCK") for s in statements[1:])


def test_on_postgresql_nothing_is_locked(monkeypatch):
    conn = FakeConnection(FakeCursor(respond))
    patch_postgres_hook(monkeypatch, conn)
    with pytest.raises(AirflowFailException):
        make_operator().execute(CONTEXT)
    assert not any(s.startswith("LOCK") for s in conn.cursor_obj.statements)
