"""Load a dimension table: truncate-insert or upsert, per task."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

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

Mode = Literal["truncate-insert", "upsert"]


class LoadDimensionOperator(BaseOperator):
    """Load a dimension table from a query, in one transaction.

    ``truncate-insert`` replaces the whole table with the query's rows: right when the
    query sees the complete source (songs and artists from the full song set).
    ``upsert`` merges the rows by ``key_columns``: right when the query sees one interval
    (users, time). With ``version_column`` the newer row wins, so intervals loaded in any
    order end with the latest version of each key.

    :param conn_id: Airflow connection of the warehouse.
    :param table: dimension table to load.
    :param sql: a ``SELECT`` (or a ``.sql`` file on the DAG's template search path) whose
        columns are named like the table's; it may use the interval bind parameters of
        ``LoadFactOperator``. Templated.
    :param mode: ``"truncate-insert"`` (default) or ``"upsert"``.
    :param key_columns: the dimension's key; required for ``upsert``.
    :param version_column: optional column ordering versions of a key (``upsert`` only).
    :param schema: schema of ``table``.
    """

    template_fields: Sequence[str] = ("sql",)
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {"sql": "sql"}
    ui_color = "#80BD9E"

    def __init__(
        self,
        *,
        conn_id: str,
        table: str,
        sql: str,
        mode: Mode = "truncate-insert",
        key_columns: Sequence[str] = (),
        version_column: str | None = None,
        schema: str = "public",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if mode not in ("truncate-insert", "upsert"):
            raise ValueError(f"mode must be 'truncate-insert' or 'upsert', not {mode!r}")
        if mode == "upsert" and not key_columns:
            raise ValueError(f"{table}: mode 'upsert' needs key_columns")
        if version_column and mode != "upsert":
            raise ValueError(f"{table}: version_column applies to mode 'upsert' only")
        self.conn_id = conn_id
        self.table = table
        self.sql = sql
        self.mode = mode
        self.key_columns = list(key_columns)
        self.version_column = version_column
        self.schema = schema

    def statements(self, columns: Sequence[str]) -> list[str]:
        """The load's statements for a query returning ``columns``."""
        table = sql.qualified(self.schema, self.table)
        select = self.sql.strip().rstrip(";")
        if self.mode == "truncate-insert":
            return sql.truncate_insert(table, columns, select)
        return sql.upsert(
            table,
            columns,
            select,
            key_columns=self.key_columns,
            staging_name=f"incoming_{self.table}",
            version_column=self.version_column,
        )

    def execute(self, context: Context) -> None:
        parameters = interval_parameters(
            context["data_interval_start"], context["data_interval_end"]
        )
        select = self.sql.strip().rstrip(";")
        with transaction(self.conn_id) as cursor:
            columns = query_columns(cursor, sql.columns_probe(select), parameters)
            run_statements(cursor, self.statements(columns), parameters)
            cursor.execute(f"SELECT COUNT(*) FROM {sql.qualified(self.schema, self.table)}")  # noqa: S608
            total = cursor.fetchone()[0]
        self.log.info("%s (%s): %s rows after the load", self.table, self.mode, total)
