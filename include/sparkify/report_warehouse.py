"""Read what a run report shows from the warehouse, through a DB-API cursor.

The queries are ``include/sql/report_*.sql`` (read with ``sparkify.sql.read_sql``); table
names go in as validated, quoted identifiers, values as bind parameters. Works on
PostgreSQL and Redshift alike. Nothing here imports Airflow.

Rows are counted in each table's ``CountScope`` (``report_model.TABLE_SCOPES``): this run's
rows of ``staging_events``, the data interval's of ``songplays`` and ``time``, the whole of
the tables every run rewrites.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sparkify.report_model import (
    MAX_REJECTS_SHOWN,
    REPORT_TABLES,
    WHOLE_TABLE,
    CheckRow,
    Count,
    CountScope,
    RejectRow,
    RowSnapshot,
    RunReport,
    TableCount,
    scope_of,
    task_timings,
)
from sparkify.sql import qualified, read_sql, render_tables
from sparkify.warehouse import interval_parameters


def existing_tables(cursor: Any, schema: str) -> set[str]:
    """Names of the tables in ``schema``."""
    cursor.execute(read_sql("report_tables_present"), {"schema": schema})
    return {row[0] for row in cursor.fetchall()}


def scope_parameters(
    run_id: str | None, interval_start: datetime | None, interval_end: datetime | None
) -> dict[str, Any]:
    """The bind parameters the count scopes need, as far as they are known.

    :param run_id: the run's id (``run_id``); ``None``: this run's rows are unknown.
    :param interval_start: start of the run's data interval (inclusive).
    :param interval_end: its end (exclusive). Either ``None``, or an empty interval: the
        interval's rows are unknown. Both become naive UTC (``interval_parameters``).
    """
    parameters: dict[str, Any] = {}
    if run_id:
        parameters["run_id"] = run_id
    if interval_start is not None and interval_end is not None:
        try:
            bounds = interval_parameters(interval_start, interval_end)
        except ValueError:  # an empty interval (start == end) holds no row to count
            bounds = {}
        parameters.update(
            {k: v for k, v in bounds.items() if k in ("interval_start", "interval_end")}
        )
    return parameters


def _columns(cursor: Any, schema: str, tables: Sequence[str]) -> set[tuple[str, str]]:
    """``(table, column)`` of each column of ``tables`` in ``schema``."""
    if not tables:
        return set()
    cursor.execute(read_sql("report_scope_columns"), {"schema": schema, "tables": tuple(tables)})
    return {(table, column) for table, column in cursor.fetchall()}


def snapshot_rows(
    cursor: Any,
    schema: str = "public",
    tables: Sequence[str] = REPORT_TABLES,
    *,
    parameters: Mapping[str, Any] | None = None,
    scopes: Mapping[str, CountScope] | None = None,
) -> RowSnapshot:
    """Rows per table, each in its scope; ``None`` for a table that does not exist (yet).

    :param cursor: a DB-API cursor on the warehouse.
    :param schema: schema of the tables.
    :param tables: the tables to count, in order.
    :param parameters: the scopes' bind parameters (``scope_parameters``); a table whose
        scope needs one that is missing is left out (its count is unknown), unless the
        table does not exist.
    :param scopes: table -> ``CountScope``; default ``report_model.TABLE_SCOPES``.
    """
    parameters = parameters or {}
    present = existing_tables(cursor, schema)
    chosen = {table: scope_of(table, scopes) for table in tables}
    # An absent table is absent in any scope; the others need their scope's parameters.
    countable = {
        t: s
        for t, s in chosen.items()
        if t not in present or all(p in parameters for p in s.parameters)
    }
    filtered = [t for t, s in countable.items() if s.column and t in present]
    columns = _columns(cursor, schema, filtered)
    rows: dict[str, Count] = {}
    for table, scope in countable.items():
        if table not in present:
            rows[table] = None
        elif scope.column and (table, scope.column) not in columns:
            rows[table] = 0  # created before the column: none of its rows is the scope's
        else:
            query = render_tables(read_sql(scope.sql), {"table": (schema, table)})
            cursor.execute(query, {p: parameters[p] for p in scope.parameters})
            rows[table] = int(cursor.fetchone()[0])
    return RowSnapshot(rows, {table: countable[table].key for table in rows})


def count_rows(
    cursor: Any, schema: str = "public", tables: Sequence[str] = REPORT_TABLES
) -> dict[str, Count]:
    """Rows of each whole table, ``None`` for a table that does not exist (yet).

    :param cursor: a DB-API cursor on the warehouse.
    :param schema: schema of the tables.
    :param tables: the tables to count.
    """
    whole = dict.fromkeys(tables, WHOLE_TABLE)
    return dict(snapshot_rows(cursor, schema, tables, scopes=whole).rows)


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
    before: RowSnapshot | Mapping[str, Any] | None,
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

    ``before`` is the snapshot taken at the start of the run (a ``RowSnapshot`` or its
    XCom, ``RowSnapshot.to_xcom``), or ``None`` when there is none. Rows after the run
    are counted in the same scopes, with the run's ``run_id`` and interval; a table
    whose before was counted in another scope (an older snapshot) reads "unknown".
    ``results_table`` and ``rejects_table`` that do not exist (yet) give no checks and
    no rejects.

    :param cursor: a DB-API cursor on the warehouse, or ``None``.
    :param dag_id: the run's DAG.
    :param run_id: the run (its rows, checks and rejects).
    :param interval_start: start of the run's data interval.
    :param interval_end: end of the run's data interval.
    :param before: the snapshot of the start of the run.
    :param task_instances: the run's task instances.
    :param schema: schema of the tables.
    :param tables: the tables to report on, in order.
    :param rejects_table: table of the records staging set aside.
    :param results_table: table of the quality checks' results.
    :param max_rejects_shown: rejected records listed one by one.
    :param run_started: when the run started.
    :param generated_at: when the report is written (default: now).
    :param warehouse_error: why the warehouse could not be read (with ``cursor=None``).
    :param report_task_id: the report's own task, shown as running.
    """
    snapshot = RowSnapshot.from_xcom(before)
    after = RowSnapshot({}, {})
    checks: list[CheckRow] = []
    rejects: list[RejectRow] = []
    by_table: dict[str, int] = {}
    if cursor is not None:
        present = existing_tables(cursor, schema)
        parameters = scope_parameters(run_id, interval_start, interval_end)
        after = snapshot_rows(cursor, schema, tables, parameters=parameters)
        if results_table in present:
            checks = read_check_results(cursor, qualified(schema, results_table), run_id)
        if rejects_table in present:
            by_table, rejects = read_rejects(
                cursor, qualified(schema, rejects_table), run_id, max_rejects_shown
            )
    elif warehouse_error is None:
        warehouse_error = "no connection to the warehouse"
    rows = []
    for table in tables:
        scope = scope_of(table)
        before_rows, before_known = snapshot.count(table, scope) if snapshot else (None, False)
        after_rows, after_known = after.count(table, scope)
        rows.append(TableCount(table, before_rows, after_rows, scope, before_known, after_known))
    return RunReport(
        dag_id=dag_id,
        run_id=run_id,
        interval_start=interval_start,
        interval_end=interval_end,
        generated_at=generated_at or datetime.now(UTC),
        tables=tuple(rows),
        checks=tuple(checks),
        rejects=tuple(rejects),
        rejects_by_table=by_table,
        tasks=task_timings(task_instances, report_task_id),
        run_started=run_started,
        before_taken=snapshot is not None,
        warehouse_error=warehouse_error,
        report_task_id=report_task_id,
    )
