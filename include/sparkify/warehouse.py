"""One way to talk to the warehouse: a psycopg2 connection from an Airflow connection.

PostgreSQL and Redshift both speak PostgreSQL's protocol, so every operator uses
``PostgresHook`` for both targets. Statements run in one transaction; errors say which
connection and which step failed.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

log = logging.getLogger(__name__)


class WarehouseError(RuntimeError):
    """The warehouse could not be reached or refused a statement; says which and where."""


def _describe(conn_id: str) -> str:
    from airflow.hooks.base import BaseHook

    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception:
        return f"connection {conn_id!r}"
    return f"connection {conn_id!r} ({conn.login}@{conn.host}:{conn.port}/{conn.schema})"


@contextlib.contextmanager
def transaction(conn_id: str) -> Iterator[Any]:
    """A cursor inside one transaction on ``conn_id``: committed on success, else rolled back.

    A connection that cannot be opened, or that drops in the middle (a restarted server,
    a killed backend, a network cut), raises ``WarehouseError`` naming the connection id
    and what to check; nothing of the transaction is committed, so the task's retry
    starts from a clean state. Other statement errors propagate unchanged after the
    rollback.
    """
    import psycopg2
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    try:
        conn = PostgresHook(postgres_conn_id=conn_id).get_conn()
    except psycopg2.OperationalError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WarehouseError(
            f"cannot connect to the warehouse through {_describe(conn_id)}: {reason}. "
            "Check its host, port, login and password in airflow_settings.yaml "
            "(or the Airflow UI), and that the server is running."
        ) from exc
    try:
        with conn.cursor() as cursor:
            yield cursor
        conn.commit()
    except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
        if not conn.closed:
            with contextlib.suppress(Exception):
                conn.rollback()
            raise
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WarehouseError(
            f"lost the connection to the warehouse through {_describe(conn_id)} in the middle "
            f"of a transaction: {reason}. Nothing of it was committed; a retry starts over."
        ) from exc
    except BaseException:
        with contextlib.suppress(Exception):
            conn.rollback()
        raise
    finally:
        with contextlib.suppress(Exception):
            conn.close()


def run_statements(
    cursor: Any, statements: Sequence[str], parameters: Mapping[str, Any] | None = None
) -> None:
    """Execute ``statements`` in order on ``cursor`` with the same bind parameters."""
    for statement in statements:
        log.info("Running: %s", statement if len(statement) < 2000 else statement[:2000] + " ...")
        cursor.execute(statement, parameters or {})


def _utc_naive(moment: datetime) -> datetime:
    """A plain ``datetime`` in naive UTC (pendulum's subclasses do their own arithmetic)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return datetime(
        moment.year, moment.month, moment.day,
        moment.hour, moment.minute, moment.second, moment.microsecond,
    )  # fmt: skip


def interval_parameters(start: datetime, end: datetime) -> dict[str, Any]:
    """Bind parameters describing a data interval ``[start, end)``.

    ``interval_start``/``interval_end`` are naive UTC timestamps (the warehouse's
    ``TIMESTAMP`` columns hold UTC); ``*_ms`` are the same instants in epoch milliseconds,
    the unit of the events' ``ts``.
    """
    start_utc, end_utc = _utc_naive(start), _utc_naive(end)
    if end_utc <= start_utc:
        raise ValueError(f"empty data interval: {start} to {end}")
    epoch = datetime(1970, 1, 1)
    return {
        "interval_start": start_utc,
        "interval_end": end_utc,
        "interval_start_ms": (start_utc - epoch) // timedelta(milliseconds=1),
        "interval_end_ms": (end_utc - epoch) // timedelta(milliseconds=1),
    }
