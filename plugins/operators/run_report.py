"""A run's report: row counts at the start, then Markdown + HTML in object storage at the end."""

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
    build_report,
    configured_reports_url,
    count_rows,
    write_report,
)
from sparkify.warehouse import WarehouseError, transaction

if TYPE_CHECKING:
    from airflow.utils.context import Context


class RowCountSnapshotOperator(BaseOperator):
    """Count the rows of the warehouse's tables; the counts are the task's XCom.

    Runs at the start of a run, before anything is created or loaded: a table that does
    not exist yet (the very first run) counts as ``None`` ("absent" in the report). A
    warehouse that cannot be read is logged and gives ``None`` ("unknown"): as the setup
    of the run report, this task must not fail, or the run would get no report.

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

    def execute(self, context: Context) -> dict[str, int | None] | None:
        import psycopg2

        try:
            with transaction(self.conn_id) as cursor:
                counts = count_rows(cursor, self.schema, self.tables)
        except (WarehouseError, psycopg2.Error) as exc:
            # The setup of the run report: failing here would leave the run without one.
            lines = str(exc).strip().splitlines()
            self.log.warning(
                "Rows at the start of the run are unknown (the report says so): %s",
                lines[0] if lines else type(exc).__name__,
            )
            return None
        self.log.info(
            "Rows at the start of the run: %s",
            ", ".join(f"{t} {'absent' if n is None else n}" for t, n in counts.items()),
        )
        return counts


class RunReportOperator(BaseOperator):
    """Write the run's report as Markdown and HTML to object storage, and log where.

    The report shows rows per table before (``before``) and after the run, the run's
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
    :param before: rows per table at the start of the run (table -> count, ``None`` for
        an absent table), usually ``RowCountSnapshotOperator(...).output``; ``None`` or
        empty when unknown (the snapshot failed). Templated.
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
        before: Mapping[str, int | None] | Any = None,
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

    def _before(self) -> Mapping[str, int | None] | None:
        if self.before is None or isinstance(self.before, Mapping):
            return self.before
        self.log.warning(
            "before is not a mapping of table -> rows (%r): shown as unknown", self.before
        )
        return None

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
