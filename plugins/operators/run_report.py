"""A run's report: row counts at the start, then Markdown + HTML in object storage at the end.

Both count each table in its scope (``sparkify.report_model.TABLE_SCOPES``): this run's
rows of ``staging_events``, the run's data interval of ``songplays`` and ``time``, the
whole of the tables every run rewrites.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.exceptions import AirflowException, AirflowNotFoundException
from airflow.models import BaseOperator

from sparkify.run_report import (
    MAX_REJECTS_SHOWN,
    REPORT_TABLES,
    REPORTS_URL_VARIABLE,
    STORAGE_CONN_ID,
    RowSnapshot,
    build_report,
    configured_reports_url,
    scope_parameters,
    snapshot_rows,
    write_report,
)
from sparkify.warehouse import WarehouseError, transaction

if TYPE_CHECKING:
    from airflow.utils.context import Context


class RowCountSnapshotOperator(BaseOperator):
    """Count the rows of the warehouse's tables, each in its scope; the task's XCom.

    Runs at the start of a run, before anything is created or loaded. Runs overlap, so
    a table is counted in its ``CountScope``: ``staging_events`` this run's rows (the
    context's ``run_id``), ``songplays`` and ``time`` the rows of the run's data interval
    (``data_interval_start``/``_end``), the tables every run rewrites whole. A table that
    does not exist yet (the very first run) counts as ``None`` ("absent" in the report); a
    context without the run or interval leaves the tables that need it out ("unknown").
    A warehouse that cannot be read is logged and gives ``None`` ("unknown"): as the
    setup of the run report, this task must not fail, or the run would get no report.
    The XCom is ``RowSnapshot.to_xcom()``: ``{"rows": {table: n}, "scopes": {table: key}}``.

    :param conn_id: Airflow connection of the warehouse.
    :param schema: schema of the tables.
    :param tables: the tables to count.
    """

    ui_color = "#D5E8F2"

    def __init__(
        self,
        *,
        conn_id: str,
        schema: str = "public",
        tables: Sequence[str] = REPORT_TABLES,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self.schema = schema
        self.tables = list(tables)

    def execute(self, context: Context) -> dict[str, dict[str, Any]] | None:
        import psycopg2

        parameters = scope_parameters(
            context.get("run_id"),
            context.get("data_interval_start"),
            context.get("data_interval_end"),
        )
        try:
            with transaction(self.conn_id) as cursor:
                counts = snapshot_rows(cursor, self.schema, self.tables, parameters=parameters)
        except (WarehouseError, psycopg2.Error) as exc:
            # The setup of the run report: failing here would leave the run without one.
            lines = str(exc).strip().splitlines()
            self.log.warning(
                "Rows at the start of the run are unknown (the report says so): %s",
                lines[0] if lines else type(exc).__name__,
            )
            return None
        shown = [
            f"{t} ({counts.scopes[t]}) {'absent' if counts.rows[t] is None else counts.rows[t]}"
            for t in counts.rows
        ]
        self.log.info("Rows at the start of the run: %s", ", ".join(shown))
        unknown = [t for t in self.tables if t not in counts.rows]
        if unknown:
            self.log.warning("Not counted, no run or interval in the context: %s", unknown)
        return counts.to_xcom()


class RunReportOperator(BaseOperator):
    """Write the run's report as Markdown and HTML to object storage, and log where.

    The report shows rows per table before (``before``) and after the run, each in its
    scope (``sparkify.report_model.TABLE_SCOPES``: this run's rows, the run's interval,
    or the whole table every run shares, named next to the counts), the run's
    rejected records (``rejects_table``), the result of every quality check of the run
    (``results_table``, latest attempt) and each task's state, start, end, duration and
    try, from the run's task instances at report time (tasks not done yet show their
    current state). It assumes nothing of its place in the DAG: as a teardown
    (``.as_teardown(setups=...)``) or a leaf with ``trigger_rule="all_done"``, a failed
    run gets its report too. (A teardown runs when at least one of its setups succeeded:
    with ``setups=[begin, snapshot]`` a failed snapshot still gets a report, with
    ``setups=snapshot`` alone it leaves the report ``upstream_failed``.) A warehouse that
    cannot be read is noted in the report instead of failing it; a report that cannot be
    written fails the task.

    Objects: ``<reports_url>/<dag_id>/<run_id>.md`` and ``.html`` (names made file-safe),
    written through Airflow's ``ObjectStoragePath`` with ``storage_conn_id``; ``file://``
    URLs (and plain paths) write local files. Returns ``{"markdown": url, "html": url}``.

    :param conn_id: Airflow connection of the warehouse.
    :param reports_url: URL prefix of the reports, e.g. ``s3://bucket/reports``; in a DAG
        ``"{{ var.value.sparkify_reports_url }}"``. Default: the Variable
        ``sparkify_reports_url`` at run time. Templated.
    :param storage_conn_id: Airflow connection of the object store (``aws-redshift``;
        ``None``: the default AWS credential chain, e.g. a Deployment's IAM role; not used
        for ``file://``). Templated.
    :param before: rows per table at the start of the run, usually
        ``RowCountSnapshotOperator(...).output`` (``RowSnapshot.to_xcom()``; an older flat
        ``{table: rows}`` counted whole tables); ``None`` or empty when unknown (the
        snapshot failed). Templated.
    :param schema: schema of the tables, ``rejects_table`` and ``results_table``.
    :param tables: the tables to report on, in order.
    :param rejects_table: table of the records staging set aside.
    :param results_table: table of the quality checks' results.
    :param max_rejects_shown: rejected records listed one by one (all are counted).
    """

    template_fields: Sequence[str] = ("before", "reports_url", "storage_conn_id")
    ui_color = "#D5E8F2"

    def __init__(
        self,
        *,
        conn_id: str,
        reports_url: str | None = None,
        storage_conn_id: str | None = STORAGE_CONN_ID,
        before: Mapping[str, Any] | Any = None,
        schema: str = "public",
        tables: Sequence[str] = REPORT_TABLES,
        rejects_table: str = "staging_rejects",
        results_table: str = "data_quality_results",
        max_rejects_shown: int = MAX_REJECTS_SHOWN,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self.reports_url = reports_url
        self.storage_conn_id = storage_conn_id
        self.before = before
        self.schema = schema
        self.tables = list(tables)
        self.rejects_table = rejects_table
        self.results_table = results_table
        self.max_rejects_shown = max_rejects_shown

    def _before(self) -> RowSnapshot | None:
        snapshot = RowSnapshot.from_xcom(self.before)
        if snapshot is None and self.before:
            self.log.warning(
                "before is not a snapshot of rows per table (%r): shown as unknown", self.before
            )
        return snapshot

    def _reports_url(self) -> str:
        url = self.reports_url or configured_reports_url()
        if not url:
            raise AirflowException(
                f"{self.task_id}: no reports_url, and the Airflow Variable "
                f"{REPORTS_URL_VARIABLE!r} is not set: say where reports go, e.g. "
                "s3://<bucket>/reports"
            )
        return str(url)

    def execute(self, context: Context) -> dict[str, str]:
        import psycopg2

        reports_url = self._reports_url()  # before any work: a missing setting fails fast
        dag_run = context["dag_run"]
        report_args = {
            "dag_id": dag_run.dag_id,
            "run_id": context["run_id"],
            "interval_start": context.get("data_interval_start"),
            "interval_end": context.get("data_interval_end"),
            "before": self._before(),
            "task_instances": dag_run.get_task_instances(),
            "schema": self.schema,
            "tables": self.tables,
            "rejects_table": self.rejects_table,
            "results_table": self.results_table,
            "max_rejects_shown": self.max_rejects_shown,
            "run_started": dag_run.start_date,
            "report_task_id": self.task_id,
        }
        try:
            with transaction(self.conn_id) as cursor:
                report = build_report(cursor, **report_args)
        except (WarehouseError, psycopg2.Error, AirflowNotFoundException) as exc:
            lines = str(exc).strip().splitlines()
            reason = lines[0] if lines else type(exc).__name__
            self.log.warning("The warehouse could not be read, the report says so: %s", reason)
            report = build_report(None, warehouse_error=reason, **report_args)
        markdown, page = write_report(report, reports_url, self.storage_conn_id)
        self.log.info("Run report: %s", markdown)
        self.log.info("Run report: %s", page)
        log = self.log.info if report.succeeded else self.log.warning
        log("Outcome: %s", report.outcome())
        return {"markdown": markdown, "html": page}
