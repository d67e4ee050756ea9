"""Unit tests for sparkify.warehouse: interval parameters and the transaction."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace

import pendulum
import psycopg2
import pytest
from airflow.hooks.base import BaseHook

from sparkify.warehouse import (
    WarehouseError,
    interval_parameters,
    run_statements,
    transaction,
)
from tests.fakes import FakeConnection, FakeCursor, patch_postgres_hook

NOV5_MS = 1_541_376_000_000  # 2018-11-05T00:00:00Z
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS

# ----------------------------------------------------------------------------- interval


def assert_plain_naive(value: object) -> None:
    assert type(value) is datetime  # not a pendulum subclass
    assert value.tzinfo is None


def test_interval_parameters_utc():
    params = interval_parameters(
        datetime(2018, 11, 5, tzinfo=UTC), datetime(2018, 11, 6, tzinfo=UTC)
    )
    assert params == {
        "interval_start": datetime(2018, 11, 5),
        "interval_end": datetime(2018, 11, 6),
        "interval_start_ms": NOV5_MS,
        "interval_end_ms": NOV5_MS + DAY_MS,
    }
    for key in ("interval_start", "interval_end"):
        assert_plain_naive(params[key])
    assert type(params["interval_start_ms"]) is int


def test_interval_parameters_pendulum():
    start = pendulum.datetime(2018, 11, 5, 13, tz="UTC")
    params = interval_parameters(start, start.add(hours=1))
    assert params == {
        "interval_start": datetime(2018, 11, 5, 13),
        "interval_end": datetime(2018, 11, 5, 14),
        "interval_start_ms": NOV5_MS + 13 * HOUR_MS,
        "interval_end_ms": NOV5_MS + 14 * HOUR_MS,
    }
    assert_plain_naive(params["interval_start"])
    assert_plain_naive(params["interval_end"])


def test_interval_parameters_non_utc_pendulum_converts_to_utc():
    start = pendulum.datetime(2018, 11, 5, tz="America/New_York")  # EST: 05:00Z
    params = interval_parameters(start, start.add(days=1))
    assert params["interval_start"] == datetime(2018, 11, 5, 5)
    assert params["interval_end"] == datetime(2018, 11, 6, 5)
    assert params["interval_start_ms"] == NOV5_MS + 5 * HOUR_MS
    assert params["interval_end_ms"] == NOV5_MS + DAY_MS + 5 * HOUR_MS
    assert_plain_naive(params["interval_start"])


def test_interval_parameters_fixed_offset_stdlib():
    plus_two = timezone(timedelta(hours=2))
    params = interval_parameters(
        datetime(2018, 11, 5, 2, tzinfo=plus_two), datetime(2018, 11, 5, 3, 30, tzinfo=plus_two)
    )
    assert params["interval_start"] == datetime(2018, 11, 5, 0)
    assert params["interval_end"] == datetime(2018, 11, 5, 1, 30)
    assert params["interval_end_ms"] - params["interval_start_ms"] == 90 * 60_000


def test_interval_parameters_naive_is_taken_as_utc_and_ms_truncate_microseconds():
    params = interval_parameters(
        datetime(2018, 11, 5, 0, 0, 0, 999), datetime(2018, 11, 5, 0, 0, 1, 2500)
    )
    assert params["interval_start"] == datetime(2018, 11, 5, 0, 0, 0, 999)
    assert params["interval_start_ms"] == NOV5_MS
    assert params["interval_end_ms"] == NOV5_MS + 1002


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (datetime(2018, 11, 5, tzinfo=UTC), datetime(2018, 11, 5, tzinfo=UTC)),
        (datetime(2018, 11, 6, tzinfo=UTC), datetime(2018, 11, 5, tzinfo=UTC)),
        # the same instant written in two zones
        (
            pendulum.datetime(2018, 11, 5, 5, tz="UTC"),
            pendulum.datetime(2018, 11, 5, tz="America/New_York"),
        ),
    ],
)
def test_interval_parameters_refuses_empty_or_negative_intervals(start, end):
    with pytest.raises(ValueError, match="empty data interval"):
        interval_parameters(start, end)


# ----------------------------------------------------------------------------- transaction


def test_transaction_commits_on_success_and_closes(monkeypatch):
    conn = FakeConnection()
    asked = patch_postgres_hook(monkeypatch, conn)
    with transaction("redshift") as cursor:
        assert cursor is conn.cursor_obj
        cursor.execute("SELECT 1")
        assert conn.commits == 0
    assert asked == ["redshift"]
    assert cursor.closed
    assert (conn.commits, conn.rollbacks, conn.closed) == (1, 0, True)
    assert conn.events == ["commit", "close"]


def test_transaction_rolls_back_and_reraises_the_same_error(monkeypatch):
    conn = FakeConnection()
    patch_postgres_hook(monkeypatch, conn)
    failure = psycopg2.errors.UndefinedTable('relation "nope" does not exist')
    with pytest.raises(psycopg2.errors.UndefinedTable) as info, transaction("wh") as cursor:
        cursor.execute("SELECT * FROM nope")
        raise failure
    assert info.value is failure
    assert cursor.closed
    assert conn.events == ["rollback", "close"]


def test_transaction_rolls_back_when_commit_fails(monkeypatch):
    conn = FakeConnection()

    def failing_commit() -> None:
        raise psycopg2.OperationalError("server closed the connection")

    conn.commit = failing_commit
    patch_postgres_hook(monkeypatch, conn)
    with pytest.raises(psycopg2.OperationalError), transaction("wh"):
        pass
    assert conn.events == ["rollback", "close"]


def test_transaction_connection_lost_midway_is_a_warehouse_error(monkeypatch):
    conn = FakeConnection()
    patch_postgres_hook(monkeypatch, conn)
    monkeypatch.setattr(
        BaseHook,
        "get_connection",
        staticmethod(lambda conn_id: SimpleNamespace(login="u", host="h", port=5439, schema="d")),
    )
    with pytest.raises(WarehouseError) as info, transaction("redshift"):
        conn.closed = 2  # what psycopg2 sets when the server goes away
        raise psycopg2.OperationalError(
            "server closed the connection unexpectedly\n\tThis probably means ..."
        )
    message = str(info.value)
    assert "connection 'redshift' (u@h:5439/d)" in message
    assert "server closed the connection unexpectedly" in message
    assert "This probably means" not in message
    assert isinstance(info.value.__cause__, psycopg2.OperationalError)
    assert conn.commits == 0


def test_transaction_operational_error_on_a_live_connection_propagates(monkeypatch):
    conn = FakeConnection()
    patch_postgres_hook(monkeypatch, conn)
    with pytest.raises(psycopg2.OperationalError), transaction("wh"):
        raise psycopg2.OperationalError("canceling statement due to statement timeout")
    assert conn.events == ["rollback", "close"]


def test_transaction_connect_error_names_the_connection(monkeypatch):
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    def refuse(self):
        raise psycopg2.OperationalError(
            'connection to server at "127.0.0.1", port 8001 failed: Connection refused\n'
            "\tIs the server running on that host and accepting TCP/IP connections?\n"
        )

    def get_connection(conn_id):
        assert conn_id == "redshift"
        return SimpleNamespace(login="sparkify", host="127.0.0.1", port=8001, schema="sparkify")

    monkeypatch.setattr(PostgresHook, "get_conn", refuse)
    monkeypatch.setattr(BaseHook, "get_connection", staticmethod(get_connection))
    with pytest.raises(WarehouseError) as info, transaction("redshift"):
        pytest.fail("the body must not run without a connection")
    message = str(info.value)
    assert message.startswith(
        "cannot connect to the warehouse through connection 'redshift' "
        "(sparkify@127.0.0.1:8001/sparkify): "
        'connection to server at "127.0.0.1", port 8001 failed: Connection refused. '
    )
    assert "Is the server running" not in message  # only the first line of the reason
    assert "airflow_settings.yaml" in message
    assert isinstance(info.value.__cause__, psycopg2.OperationalError)


def test_transaction_connect_error_when_the_connection_cannot_be_described(monkeypatch):
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    def refuse(self):
        raise psycopg2.OperationalError("")

    def get_connection(conn_id):
        raise LookupError(conn_id)

    monkeypatch.setattr(PostgresHook, "get_conn", refuse)
    monkeypatch.setattr(BaseHook, "get_connection", staticmethod(get_connection))
    with pytest.raises(WarehouseError) as info, transaction("redshift"):
        pass
    assert str(info.value).startswith(
        "cannot connect to the warehouse through connection 'redshift': OperationalError. "
    )


def test_transaction_does_not_wrap_other_connect_errors(monkeypatch):
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    def broken(self):
        raise KeyError("password")

    monkeypatch.setattr(PostgresHook, "get_conn", broken)
    with pytest.raises(KeyError), transaction("wh"):
        pass


# ----------------------------------------------------------------------------- helpers


def test_run_statements_in_order_with_the_same_parameters(caplog):
    cursor = FakeCursor()
    params = {"interval_start": datetime(2018, 11, 5)}
    with caplog.at_level(logging.INFO, logger="sparkify.warehouse"):
        run_statements(cursor, ["DELETE FROM a", "INSERT INTO a SELECT 1", "x" * 3000], params)
    assert cursor.executed == [
        ("DELETE FROM a", params),
        ("INSERT INTO a SELECT 1", params),
        ("x" * 3000, params),
    ]
    messages = [r.getMessage() for r in caplog.records]
    assert messages[:2] == ["Running: DELETE FROM a", "Running: INSERT INTO a SELECT 1"]
    assert messages[2] == "Running: " + "x" * 2000 + " ..."


def test_run_statements_without_parameters_passes_an_empty_mapping():
    cursor = FakeCursor()
    run_statements(cursor, ["SELECT 1"])
    assert cursor.executed == [("SELECT 1", {})]
