"""The staging tables' shape and bookkeeping, shared by both load paths.

What a load reads of its table (columns, types, lengths), the columns the DDL declares
that an older table lacks, how a run's rows are told apart from other runs', and the
plays-per-hour counts a load records. No COPY here: ``json_copy`` (PostgreSQL) and
``redshift_copy`` (Redshift) do the copying.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sparkify import ddl, sql
from sparkify.json_encode import FLOAT_TYPES, INTEGER_TYPES, TEXT_TYPES, Column
from sparkify.staging_rejects import StagingError
from sparkify.staging_rules import hour_start

# A run-partitioned staging table (staging_events) keeps each run's rows apart by these
# columns, which the load fills (they are not in the JSON): a run replaces only its own
# rows, so runs of different intervals, or 24 hourly runs of one day file, stage at once.
RUN_COLUMN = "run_id"
STAGED_AT_COLUMN = "staged_at"
# Rows of other runs older than this are dropped by the next load: a run's tasks read
# its staged rows within minutes (hours with retries), a day later nobody does.
KEEP_OTHER_RUNS = timedelta(days=1)


def table_columns(cursor: Any, schema: str, table: str) -> list[Column]:
    """The table's columns in order, from the information schema."""
    cursor.execute(sql.read_sql("table_columns"), (schema, table))
    columns = [Column(*row) for row in cursor]
    if not columns:
        raise StagingError(f"table {schema}.{table} does not exist (run create_tables first)")
    unknown = [c for c in columns if c.data_type not in INTEGER_TYPES | FLOAT_TYPES | TEXT_TYPES]
    unknown = [c for c in unknown if c.name != STAGED_AT_COLUMN]
    if unknown:
        raise StagingError(f"{schema}.{table}: unsupported staging column types {unknown}")
    return columns


def declares_runs(table: str) -> bool:
    """Whether the DDL gives ``table`` the run's columns (``run_id``, ``staged_at``): a
    non-incremental load then replaces only its run's rows, and runs of other intervals
    stage at the same time."""
    try:
        declared = ddl.column_types(table)
    except KeyError:
        return False
    return {RUN_COLUMN, STAGED_AT_COLUMN} <= set(declared)


def is_run_partitioned(columns: Sequence[Column]) -> bool:
    """Whether the table keeps each run's rows apart (it has ``run_id`` and ``staged_at``)."""
    names = {c.name for c in columns}
    return RUN_COLUMN in names and STAGED_AT_COLUMN in names


def ensure_declared_columns(
    cursor: Any, schema: str, table: str, columns: list[Column], dialect: str
) -> list[Column]:
    """``columns``, once the columns the DDL declares and the table lacks are added.

    A table created before a column was declared lacks it (CREATE TABLE IF NOT EXISTS
    keeps an existing table as it is, and Redshift has no ADD COLUMN IF NOT EXISTS): the
    load adds it inside its transaction, after taking the table's lock and reading its
    columns again, so two runs upgrading at once add it once.

    :param cursor: a cursor inside the load's transaction.
    :param schema: the table's schema.
    :param table: the staging table.
    :param columns: its columns as ``table_columns`` read them.
    :param dialect: ``"postgres"`` or ``"redshift"`` (the lock's syntax).
    """
    try:
        declared = ddl.column_types(table)
    except KeyError:
        return columns
    if all(name in {c.name for c in columns} for name in declared):
        return columns
    cursor.execute(sql.lock_tables([sql.qualified(schema, table)], dialect))
    columns = table_columns(cursor, schema, table)
    present = {c.name for c in columns}
    for name, type_sql in declared.items():
        if name not in present:
            cursor.execute(sql.add_column(sql.qualified(schema, table), name, type_sql))
    return table_columns(cursor, schema, table)


def forget_stale_runs(cursor: Any, table: str, run_id: str, now: datetime | None = None) -> None:
    """Drop a run-partitioned table's rows of other runs staged a day ago or more.

    Run in a transaction of its own before the load: in the load's, two runs clearing
    the same old rows would wait for each other's whole COPY.

    :param cursor: a cursor.
    :param table: the validated, quoted staging table.
    :param run_id: the run about to load (its own rows are the load's to replace).
    :param now: the load's time (UTC, naive); rows staged before ``now - KEEP_OTHER_RUNS``
        go, and so do rows of no run (staged before runs were kept apart).
    """
    stale_before = (now or utc_now()) - KEEP_OTHER_RUNS
    cursor.execute(sql.delete_stale_runs(table), {"run_id": run_id, "stale_before": stale_before})


def forget_run(cursor: Any, table: str, run_id: str) -> None:
    """Drop a run-partitioned table's rows of ``run_id``, in the load's transaction: a
    re-run replaces them, and a failed re-run leaves them as they were."""
    cursor.execute(sql.delete_run_rows(table), {"run_id": run_id})


def utc_now() -> datetime:
    """Now, as the warehouse's naive UTC ``TIMESTAMP`` holds it."""
    return datetime.now(UTC).replace(tzinfo=None)


def record_counts(
    cursor: Any,
    counts_table: str,
    table_name: str,
    run_id: str,
    keys: Sequence[str],
    plays: dict[str, dict[int, int]],
) -> None:
    """Replace the run's play counts for the table with those of the objects just loaded.

    Per run, not per object: 24 hourly runs staging one day file at once each keep their
    own counts, which their quality checks read.

    :param cursor: a cursor inside the load's transaction.
    :param counts_table: the validated, quoted counts table.
    :param table_name: the staging table the plays were counted in.
    :param run_id: the run that loaded them.
    :param keys: the objects loaded.
    :param plays: per object, plays per hour number (``LoadResult.plays``).
    """
    parameters = {"table_name": table_name, "run_id": run_id}
    cursor.execute(sql.delete_run_counts(counts_table), parameters)
    now = utc_now()
    rows = [
        (table_name, key, hour_start(hour), count, run_id, now)
        for key in keys
        for hour, count in plays.get(key, {}).items()
    ]
    if rows:
        cursor.executemany(sql.insert_counts(counts_table), rows)
