"""The astro-sdk edge of the star-schema loads: a ``run_raw_sql`` task that takes Tables.

``LoadFactOperator`` and ``LoadDimensionOperator`` are astro ``RawSQLOperator`` tasks:
their query names its source tables as ``{{ staging_events }}``-style placeholders, the
task receives those tables as astro ``Table`` arguments (usually the ``.output`` of the
staging tasks), so the DAG's dependencies come from the data it passes, and the task
returns the loaded ``Table`` for the next one. What they run is built by
``sparkify.sql`` (no astro there) and executed in one transaction by
``sparkify.warehouse``, with the run's data interval and id as bind parameters, after
locking the tables it writes, so that runs of different intervals can load at once.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from astro.sql import RawSQLOperator
from astro.table import BaseTable, Metadata, Table

from sparkify.config import SCHEMA, warehouse_dialect
from sparkify.ddl import table_columns
from sparkify.sql import count_rows, identifier, lock_tables, qualified, read_sql, render_tables
from sparkify.warehouse import interval_parameters, run_statements, transaction

if TYPE_CHECKING:
    import jinja2
    from airflow.utils.context import Context

# Keyword arguments astro's operator takes out of op_kwargs: not usable as table names.
_RESERVED = frozenset(
    {"output_table", "handler", "conn_id", "database", "schema", "response_limit",
     "response_size", "query_modifier", "upstream_tasks", "sql"}
)  # fmt: skip


def query_text(sql_or_file: str) -> str:
    """SQL text, or the text of ``include/sql/<name>.sql`` for ``"<name>.sql"``."""
    text = sql_or_file.strip()
    if text.endswith(".sql") and "\n" not in text and " " not in text:
        return read_sql(text.removesuffix(".sql"))
    return text.rstrip(";")


def _render_query(query: str, **tables: BaseTable) -> str:
    """The query with its tables' validated, quoted names (the task's python_callable)."""
    return render_tables(
        query, {key: (t.metadata.schema or SCHEMA, t.name) for key, t in tables.items()}
    )


class WarehouseLoadOperator(RawSQLOperator):
    """Load ``table`` from a query over the given tables, in one transaction.

    Subclasses say which statements wrap the query (``statements``).

    :param conn_id: Airflow connection of the warehouse.
    :param table: table to load, declared in ``include/sql/create_tables.sql``: the load
        inserts the DDL's columns (the query names its columns like them).
    :param sql: a ``SELECT`` whose columns are named like the table's, or the name of a
        file in ``include/sql`` (``"songplays.sql"``). It names its source tables as
        ``{{ name }}`` and sees the interval bind parameters of ``interval_parameters``
        and ``%(run_id)s``, the run whose staged rows it reads.
    :param tables: placeholder -> astro ``Table`` (or a task's ``.output`` giving one).
    :param schema: schema of ``table``.
    """

    template_fields: Sequence[str] = ("sql", "op_kwargs")
    template_ext: Sequence[str] = ()
    template_fields_renderers = {"sql": "sql"}

    def __init__(
        self,
        *,
        conn_id: str,
        table: str,
        sql: str,
        tables: Mapping[str, Any] | None = None,
        schema: str = SCHEMA,
        **kwargs: Any,
    ) -> None:
        tables = dict(tables or {})
        reserved = sorted(_RESERVED.intersection(tables))
        if reserved:
            raise ValueError(f"{table}: table argument names {reserved} are reserved")
        query = query_text(sql)
        # Datasets are published by the quality checks, once the data has passed them.
        kwargs.setdefault("outlets", [])
        super().__init__(
            python_callable=functools.partial(_render_query, query),
            op_kwargs=tables,
            conn_id=conn_id,
            schema=schema,
            sql=query,
            **kwargs,
        )
        identifier(table)  # fail at parse time on a bad name
        self.table = table
        self.columns = table_columns(table)

    @property
    def target(self) -> Table:
        """The loaded table, as the astro ``Table`` this task returns."""
        return Table(name=self.table, conn_id=self.conn_id, metadata=Metadata(schema=self.schema))

    def render_template_fields(
        self, context: Context, jinja_env: jinja2.Environment | None = None
    ) -> None:
        # Airflow resolves the Table arguments (XComArgs) like any template field; the
        # query then gets their names from our renderer, not from Airflow's macros.
        self.op_kwargs = self.render_template(self.op_kwargs, context, jinja_env)
        self.sql = self.python_callable(**self.op_kwargs)

    def statements(self, columns: Sequence[str]) -> list[str]:
        raise NotImplementedError

    def written_tables(self) -> list[str]:
        """The validated, quoted tables the load writes (locked first, in name order)."""
        return [qualified(self.schema, self.table)]

    def execute(self, context: Context) -> Table:
        parameters = interval_parameters(
            context["data_interval_start"], context["data_interval_end"]
        )
        parameters["run_id"] = context["run_id"]
        statements = self.statements(self.columns)
        with transaction(self.conn_id) as cursor:
            # Runs of other intervals load at the same time: they write this table one
            # after the other (a merge or a rebuild racing another would duplicate rows).
            cursor.execute(lock_tables(self.written_tables(), warehouse_dialect(self.conn_id)))
            run_statements(cursor, statements, parameters)
            cursor.execute(count_rows(qualified(self.schema, self.table)))
            total = cursor.fetchone()[0]
        self.log.info(
            "%s: %s rows after the load of %s to %s",
            self.table, total, parameters["interval_start"], parameters["interval_end"],
        )  # fmt: skip
        return self.target
