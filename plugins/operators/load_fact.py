"""Load a fact table from staging, one data interval at a time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.models import BaseOperator

from sparkify import sql
from sparkify.warehouse import (
    interval_parameters,
    query_columns,
    run_statements,
    transaction,
)

if TYPE_CHECKING:
    from airflow.utils.context import Context


class LoadFactOperator(BaseOperator):
    """Append the run's data interval to a fact table, replacing that interval if loaded.

    In one transaction: delete the rows whose ``interval_column`` falls in the run's data
    interval, then insert the query's rows. The fact table only ever grows by intervals; a
    re-run of an interval neither duplicates nor loses rows.

    :param conn_id: Airflow connection of the warehouse.
    :param table: fact table to load.
    :param sql: a ``SELECT`` (or a ``.sql`` file on the DAG's template search path) whose
        columns are named like the table's; it sees the bind parameters
        ``%(interval_start)s``, ``%(interval_end)s`` (UTC timestamps) and
        ``%(interval_start_ms)s``, ``%(interval_end_ms)s`` (epoch milliseconds). Templated.
    :param interval_column: timestamp column that places a row in an interval.
    :param schema: schema of ``table``.
    """

    template_fields: Sequence[str] = ("sql",)
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {"sql": "sql"}
    ui_color = "#F98866"

    def __init__(
        self,
        *,
        conn_id: str,
        table: str,
        sql: str,
        interval_column: str = "start_time",
        schema: str = "public",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self.table = table
        self.sql = sql
        self.interval_column = interval_column
        self.schema = schema

    def execute(self, context: Context) -> int:
        parameters = interval_parameters(
            context["data_interval_start"], context["data_interval_end"]
        )
        table = sql.qualified(self.schema, self.table)
        select = self.sql.strip().rstrip(";")
        with transaction(self.conn_id) as cursor:
            columns = query_columns(cursor, sql.columns_probe(select), parameters)
            run_statements(
                cursor,
                sql.replace_interval(table, self.interval_column, columns, select),
                parameters,
            )
            inserted = cursor.rowcount
        self.log.info(
            "Loaded %s rows into %s for %s to %s",
            inserted, table, parameters["interval_start"], parameters["interval_end"],
        )  # fmt: skip
        return inserted
