"""Load a dimension table, per task: truncate-insert, upsert, interval-replace or history."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, get_args

from operators.warehouse_load import WarehouseLoadOperator, query_text
from sparkify import sql
from sparkify.ddl import table_columns

Mode = Literal["truncate-insert", "upsert", "interval-replace", "history"]
MODES: tuple[str, ...] = get_args(Mode)


class LoadDimensionOperator(WarehouseLoadOperator):
    """Load a dimension table from a query, in one transaction.

    ``truncate-insert`` replaces the whole table with the query's rows: right when the
    query sees the complete source (songs and artists from the full song set).
    ``interval-replace`` replaces the rows whose ``interval_column`` lies in the run's data
    interval with the query's rows, as the fact load does: right when each row belongs to
    one interval and comes from that interval's data (time, from the interval's plays), so
    a re-run with corrected data also drops the rows whose source is gone.
    ``history`` replaces the interval in ``history_table`` (as ``interval-replace`` does),
    then rebuilds the whole table from the history with ``rebuild_sql``: right when a row
    depends on every interval (users: the level of the user's latest play of all), so a
    re-run that removes a user's latest play brings back their earlier one, and drops a
    user with no play left.
    ``upsert`` merges the rows by ``key_columns``; with ``version_column`` the newer row
    wins, so intervals loaded in any order end with the latest version of each key. It
    never removes a row: a re-run with plays removed keeps what they left. Returns the
    dimension ``Table``.

    :param conn_id: Airflow connection of the warehouse.
    :param table: dimension table to load; its columns come from the DDL.
    :param sql: a ``SELECT`` (or a file of ``include/sql``) whose columns are named like
        the table's (like ``history_table``'s in ``history`` mode); its source tables are
        ``{{ name }}`` placeholders filled from ``tables``; it may use the interval bind
        parameters of ``LoadFactOperator``.
    :param tables: placeholder -> astro ``Table`` (e.g. a staging task's ``.output``).
    :param mode: ``"truncate-insert"`` (default), ``"upsert"``, ``"interval-replace"`` or
        ``"history"``.
    :param key_columns: the dimension's key; required for ``upsert``.
    :param version_column: optional column ordering versions of a key (``upsert`` only).
    :param interval_column: timestamp column placing a row in an interval (of ``table``
        for ``interval-replace``, of ``history_table`` for ``history``); required there.
    :param history_table: ``history`` only: the table, declared in the DDL, keeping the
        query's rows of every interval.
    :param rebuild_sql: ``history`` only: a ``SELECT`` (or a file of ``include/sql``) of
        the whole table from the history, which it names as ``{{ <history_table> }}``.
    :param schema: schema of ``table`` (and of ``history_table``).
    """

    ui_color = "#80BD9E"

    def __init__(
        self,
        *,
        mode: Mode = "truncate-insert",
        key_columns: Sequence[str] = (),
        version_column: str | None = None,
        interval_column: str | None = None,
        history_table: str | None = None,
        rebuild_sql: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(map(repr, MODES))}, not {mode!r}")
        if mode == "upsert" and not key_columns:
            raise ValueError(f"{self.table}: mode 'upsert' needs key_columns")
        if version_column and mode != "upsert":
            raise ValueError(f"{self.table}: version_column applies to mode 'upsert' only")
        by_interval = mode in ("interval-replace", "history")
        if by_interval and not interval_column:
            raise ValueError(f"{self.table}: mode {mode!r} needs interval_column")
        if interval_column and not by_interval:
            raise ValueError(
                f"{self.table}: interval_column applies to modes 'interval-replace' and "
                "'history' only"
            )
        if mode == "history" and not (history_table and rebuild_sql):
            raise ValueError(f"{self.table}: mode 'history' needs history_table and rebuild_sql")
        if mode != "history" and (history_table or rebuild_sql):
            raise ValueError(
                f"{self.table}: history_table and rebuild_sql apply to mode 'history' only"
            )
        self.history_columns = table_columns(history_table) if history_table else []
        unknown = sorted({*key_columns, *filter(None, [version_column])} - set(self.columns))
        if unknown:
            raise ValueError(f"{self.table}: {unknown} are not columns of the table")
        placed_in = history_table or self.table
        if interval_column and interval_column not in (self.history_columns or self.columns):
            raise ValueError(f"{placed_in}: {interval_column!r} is not a column of the table")
        self.mode = mode
        self.key_columns = list(key_columns)
        self.version_column = version_column
        self.interval_column = interval_column
        self.history_table = history_table
        self.rebuild_sql = None
        if history_table and rebuild_sql:
            # Rendered now: a placeholder other than the history table fails at parse time.
            names = {history_table: (self.schema, history_table)}
            self.rebuild_sql = sql.render_tables(query_text(rebuild_sql), names)

    def written_tables(self) -> list[str]:
        """The dimension and, in ``history`` mode, its history table."""
        history = [sql.qualified(self.schema, self.history_table)] if self.history_table else []
        return [*super().written_tables(), *history]

    def statements(self, columns: Sequence[str]) -> list[str]:
        """The load's statements for a table of ``columns``.

        :param columns: the table's columns, in DDL order.
        """
        table = sql.qualified(self.schema, self.table)
        if self.mode == "truncate-insert":
            return sql.truncate_insert(table, columns, self.sql)
        if self.mode == "interval-replace":
            return sql.replace_interval(table, self.interval_column, columns, self.sql)
        if self.mode == "history":
            history = sql.qualified(self.schema, self.history_table)
            return [
                *sql.replace_interval(
                    history, self.interval_column, self.history_columns, self.sql
                ),
                *sql.truncate_insert(table, columns, self.rebuild_sql),
            ]
        return sql.upsert(
            table,
            columns,
            self.sql,
            key_columns=self.key_columns,
            staging_name=f"incoming_{self.table}",
            version_column=self.version_column,
        )
