"""The PostgreSQL staging load of one run: its objects COPYed, its plays counted.

The PostgreSQL twin of ``redshift_copy.stage``: the operator (``StageToRedshiftOperator``)
plans the keys, opens the transaction and takes the locks; this streams the objects
(``json_copy.copy_objects``) with the table's staging rules, the run's constants on a
run-partitioned table, and records the plays per object and UTC hour. No astro here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sparkify import json_copy, sql, staging_rules, staging_tables
from sparkify.json_encode import Column
from sparkify.s3_objects import line_blocks
from sparkify.staging_rejects import Reject, RejectCollector


@dataclass(frozen=True)
class PostgresStaging:
    """What a PostgreSQL load needs to know.

    :param schema: the staging table's schema.
    :param table_name: the staging table (declared in ``create_tables.sql``).
    :param bucket: the data bucket.
    :param run_id: the DAG run: the rows' ``run_id`` on a run-partitioned table, and the
        counts' run.
    :param max_workers: objects fetched at once.
    :param max_rejects: bad records tolerated (set aside) before the load fails.
    :param counts_table: the plays-per-hour table.
    """

    schema: str
    table_name: str
    bucket: str
    run_id: str
    max_workers: int = 32
    max_rejects: int = 0
    counts_table: str = "staging_counts"


@dataclass(frozen=True)
class PostgresLoad:
    """What a PostgreSQL load staged: rows copied, records set aside."""

    rows: int
    rejects: list[Reject]


def stage(
    cursor: Any,
    client: Any,
    settings: PostgresStaging,
    columns: Sequence[Column],
    keys: Sequence[str],
) -> PostgresLoad:
    """COPY ``keys`` into the staging table, whose earlier rows (all, or the run's) the
    caller has deleted in the same transaction; records the plays the rules count.

    Raises ``StagingError`` on a bad record beyond ``max_rejects`` (or a failed GET): the
    caller's transaction then rolls back, so nothing half-loaded is left.

    :param cursor: a psycopg2 or psycopg 3 cursor inside the caller's transaction.
    :param client: a boto3 S3 client of the AWS connection.
    :param settings: the load's settings.
    :param columns: the table's columns (``staging_tables.table_columns``).
    :param keys: the exact objects to load.
    """
    table = sql.qualified(settings.schema, settings.table_name)
    constants: dict[str, object] = {}
    if staging_tables.is_run_partitioned(columns):
        constants = {
            staging_tables.RUN_COLUMN: settings.run_id,
            staging_tables.STAGED_AT_COLUMN: staging_tables.utc_now(),
        }
    rejects = RejectCollector(settings.max_rejects)
    rules = staging_rules.rules_for(settings.table_name)
    result = json_copy.copy_objects(
        cursor, table, columns, keys, line_blocks(client, settings.bucket),
        settings.max_workers, rejects=rejects, rules=rules, constants=constants,
    )  # fmt: skip
    if rules is not None and rules.plays is not None:
        counts_table = sql.qualified(settings.schema, settings.counts_table)
        staging_tables.record_counts(
            cursor, counts_table, settings.table_name, settings.run_id, keys, result.plays
        )
    return PostgresLoad(rows=result.rows, rejects=rejects.rejects)
