"""Load a fact table from staging, one data interval at a time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from operators.warehouse_load import WarehouseLoadOperator
from sparkify import sql


class LoadFactOperator(WarehouseLoadOperator):
    """Append the run's data interval to a fact table, replacing that interval if loaded.

    In one transaction: delete the rows whose ``interval_column`` falls in the run's data
    interval, then insert the query's rows. The fact table only ever grows by intervals; a
    re-run of an interval neither duplicates nor loses rows. Returns the fact ``Table``.

    :param conn_id: Airflow connection of the warehouse.
    :param table: fact table to load; its columns come from the DDL.
    :param sql: a ``SELECT`` (or a file of ``include/sql``, e.g. ``"songplays.sql"``) whose
        columns are named like the table's; its source tables are ``{{ name }}``
        placeholders filled from ``tables``, and it sees the bind parameters
        ``%(interval_start)s``, ``%(interval_end)s`` (UTC timestamps) and
        ``%(interval_start_ms)s``, ``%(interval_end_ms)s`` (epoch milliseconds).
    :param tables: placeholder -> astro ``Table`` (e.g. a staging task's ``.output``).
    :param interval_column: timestamp column that places a row in an interval.
    :param schema: schema of ``table``.
    """

    ui_color = "#F98866"

    def __init__(self, *, interval_column: str = "start_time", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        sql.identifier(interval_column)
        self.interval_column = interval_column

    def statements(self, columns: Sequence[str]) -> list[str]:
        table = sql.qualified(self.schema, self.table)
        return sql.replace_interval(table, self.interval_column, columns, self.sql)
