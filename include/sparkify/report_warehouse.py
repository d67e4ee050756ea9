"""Read what a run report shows from the warehouse, through a DB-API cursor.

The queries are ``include/sql/report_*.sql`` (read with ``sparkify.sql.read_sql``); table
names go in as validated, quoted identifiers, values as bind parameters. Works on
PostgreSQL and Redshift alike. Nothing here imports Airflow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sparkify.report_model import (
    MAX_REJECTS_SHOWN,
    REPORT_TABLES,
    CheckRow,
    Count,
    RejectRow,
    RunReport,
    TableCount,
    task_timings,
)
from sparkify.sql import qualified, read_sql


def existing_tables(cursor: Any, schema: str) -> set[str]:
    """Names of the tables in ``schema``."""
    cursor.execute(read_sql("report_tables_present"), {"schema": schema})
    return {row[0] for row in cursor.fetchall()}


def count_rows(
    cursor: Any, schema: str = "public", tables: Sequence[str] = REPORT_TABLES
) -> dict[str, Count]:
    """Rows per table, ``None`` for a table that does not exist (yet: the first run)."""
    present = existing_tables(cursor, schema)
    counts: dict[str, Count] = {}
    for table in tables:
        if table not in present:
            counts[table] = None
            continue
        cursor.execute(read_sql("report_count_rows").format(table=qualified(schema, table)))
        counts[table] = int(cursor.fetchone()[0])
    return counts


def read_check_results(cursor: Any, results_table: str, run_id: str) -> list[CheckRow]:
    """The run's check results, failed first; of its latest attempt when it was retried.

    ``results_table`` is the quoted, qualified name (``sparkify.sql.qualified``).
    """
    cursor.execute(read_sql("report_check_results").format(results=results_table),
                   {"run_id": run_id})  # fmt: skip
    return [
        CheckRow(name, table, bool(passed), "" if observed is None else str(observed),
                 "" if expected is None else str(expected))
        for name, table, passed, observed, expected in cursor.fetchall()
    ]  # fmt: skip


def read_rejects(
    cursor: Any, rejects_table: str, run_id: str, limit: int = MAX_REJECTS_SHOWN
) -> tuple[dict[str, int], list[RejectRow]]:
    """The run's rejected records: the count per table and the first ``limit`` of them.

    ``rejects_table`` is the quoted, qualified name (``sparkify.sql.qualified``).
    """
    cursor.execute(read_sql("report_rejects_by_table").format(rejects=rejects_table),
                   {"run_id": run_id})  # fmt: skip
    by_table = {table: int(n) for table, n in cursor.fetchall()}
    rows: list[RejectRow] = []
    if by_table and limit > 0:
        cursor.execute(read_sql("report_rejects_first").format(rejects=rejects_table),
                       {"run_id": run_id, "limit": int(limit)})  # fmt: skip
        rows = [RejectRow(t, k, int(n), r) for t, k, n, r in cursor.fetchall()]
    return by_table, rows


def build_report(
    cursor: Any | None,
    *,
    dag_id: str,
    run_id: str,
    interval_start: datetime | None,
    interval_end: datetime | None,
    before: Mapping[str, Count] | None,
    task_instances: Iterable[Any] = (),
    schema: str = "public",
    tables: Sequence[str] = REPORT_TABLES,
    rejects_table: str = "staging_rejects",
    results_table: str = "data_quality_results",
    max_rejects_shown: int = MAX_REJECTS_SHOWN,
    run_started: datetime | None = None,
    generated_at: datetime | None = None,
    warehouse_error: str | None = None,
    report_task_id: str | None = None,
) -> RunReport:
    """Read what the report shows. ``cursor=None`` (with ``warehouse_error``): DB unknown.

    ``before`` is the snapshot taken at the start of the run (table -> rows, ``None`` for
    an absent table), or ``None`` when there is none. ``results_table`` and
    ``rejects_table`` that do not exist (yet) give no checks and no rejects.
    """
    after: dict[str, Count] = {}
    checks: list[CheckRow] = []
    rejects: list[RejectRow] = []
    by_table: dict[str, int] = {}
    if cursor is not None:
        present = existing_tables(cursor, schema)
        after = count_rows(cursor, schema, tables)
        if results_table in present:
            checks = read_check_results(cursor, qualified(schema, results_table), run_id)
        if rejects_table in present:
            by_table, rejects = read_rejects(
                cursor, qualified(schema, rejects_table), run_id, max_rejects_shown
            )
    elif warehouse_error is None:
        warehouse_error = "no connection to the warehouse"
    before = before or {}
    return RunReport(
        dag_id=dag_id,
        run_id=run_id,
        interval_start=interval_start,
        interval_end=interval_end,
        generated_at=generated_at or datetime.now(UTC),
        tables=tuple(TableCount(t, before.get(t), after.get(t)) for t in tables),
        checks=tuple(checks),
        rejects=tuple(rejects),
        rejects_by_table=by_table,
        tasks=task_timings(task_instances, report_task_id),
        run_started=run_started,
        before_taken=bool(before),
        warehouse_error=warehouse_error,
        report_task_id=report_task_id,
    )
