"""Load a dimension table: truncate-insert or upsert, per task."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from operators.warehouse_load import WarehouseLoadOperator
from sparkify import sql

Mode = Literal["truncate-insert", "upsert"]


class LoadDimensionOperator(WarehouseLoadOperator):
    """Load a dimension table from a query, in one transaction.

    ``truncate-insert`` replaces the whole table with the query's rows: right when the
    query sees the complete source (songs and artists from the full song set).
    ``upsert`` merges the rows by ``key_columns``: right when the query sees one interval
    (users, time). With ``version_column`` the newer row wins, so intervals loaded in any
    order end with the latest version of each key. Returns the dimension ``Table``.

    :param conn_id: Airflow connection of the warehouse.
    :param table: dimension table to load; its columns come from the DDL.
    :param sql: a ``SELECT`` (or a file of ``include/sql``) whose columns are named like
        the table's; its source tables are ``{{ name }}`` placeholders filled from
        ``tables``; it may use the interval bind parameters of ``LoadFactOperator``.
    :param tables: placeholder -> astro ``Table`` (e.g. a staging task's ``.output``).
    :param mode: ``"truncate-insert"`` (default) or ``"upsert"``.
    :param key_columns: the dimension's key; required for ``upsert``.
    :param version_column: optional column ordering versions of a key (``upsert`` only).
    :param schema: schema of ``table``.
    """

    ui_color = "#80BD9E"

    def __init__(
        self,
        *,
        mode: Mode = "truncate-insert",
        key_columns: Sequence[str] = (),
        version_column: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if mode not in ("truncate-insert", "upsert"):
            raise ValueError(f"mode must be 'truncate-insert' or 'upsert', not {mode!r}")
        if mode == "upsert" and not key_columns:
            raise ValueError(f"{self.table}: mode 'upsert' needs key_columns")
        if version_column and mode != "upsert":
            raise ValueError(f"{self.table}: version_column applies to mode 'upsert' only")
        unknown = sorted({*key_columns, *filter(None, [version_column])} - set(self.columns))
        if unknown:
            raise ValueError(f"{self.table}: {unknown} are not columns of the table")
        self.mode = mode
        self.key_columns = list(key_columns)
        self.version_column = version_column

    def statements(self, columns: Sequence[str]) -> list[str]:
        """The load's statements for a table of ``columns``."""
        table = sql.qualified(self.schema, self.table)
        if self.mode == "truncate-insert":
            return sql.truncate_insert(table, columns, self.sql)
        return sql.upsert(
            table,
            columns,
            self.sql,
            key_columns=self.key_columns,
            staging_name=f"incoming_{self.table}",
            version_column=self.version_column,
        )
