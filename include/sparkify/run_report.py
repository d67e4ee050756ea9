"""A DAG run's report: rows per table before and after, rejects, quality checks, task times.

Rows are counted per table in the scope ``report_model.TABLE_SCOPES`` declares (this run's
rows, the run's data interval, or the whole table every run shares), so the figures say
what this run did while other runs overlap it.

The pieces, one job each:

- ``sparkify.report_model``: the data (``RunReport`` and its rows) and the run's outcome;
- ``sparkify.report_warehouse``: reading it from the warehouse (``include/sql/report_*.sql``);
- ``sparkify.report_render`` + ``templates/run_report.{md,html}.j2``: Markdown and HTML;
- ``sparkify.report_store``: names, URLs, writing to and reading from object storage.

This module joins them (``write_report``) and is where the rest of the project imports
them from. Nothing here imports Airflow at import time; the operators in
``plugins/operators/run_report.py`` do the wiring.
"""

from __future__ import annotations

from sparkify.report_format import format_duration, format_time, md_code, md_text
from sparkify.report_model import (
    INTERVAL_ROWS,
    MAX_REJECTS_SHOWN,
    REPORT_TABLES,
    RUN_ROWS,
    TABLE_SCOPES,
    WHOLE_TABLE,
    CheckRow,
    Count,
    CountScope,
    RejectRow,
    RowSnapshot,
    RunReport,
    TableCount,
    TaskTiming,
    scope_of,
    task_timings,
)
from sparkify.report_render import render_html, render_markdown
from sparkify.report_store import (
    REPORTS_URL_VARIABLE,
    STORAGE_CONN_ID,
    configured_reports_url,
    latest_report,
    read_text,
    report_urls,
    safe_file_name,
    write_text,
)
from sparkify.report_warehouse import build_report, count_rows, scope_parameters, snapshot_rows

__all__ = [
    "INTERVAL_ROWS",
    "MAX_REJECTS_SHOWN",
    "REPORTS_URL_VARIABLE",
    "REPORT_TABLES",
    "RUN_ROWS",
    "STORAGE_CONN_ID",
    "TABLE_SCOPES",
    "WHOLE_TABLE",
    "CheckRow",
    "Count",
    "CountScope",
    "RejectRow",
    "RowSnapshot",
    "RunReport",
    "TableCount",
    "TaskTiming",
    "build_report",
    "configured_reports_url",
    "count_rows",
    "format_duration",
    "format_time",
    "latest_report",
    "md_code",
    "md_text",
    "read_text",
    "render_html",
    "render_markdown",
    "report_urls",
    "safe_file_name",
    "scope_of",
    "scope_parameters",
    "snapshot_rows",
    "task_timings",
    "write_report",
]


def write_report(
    report: RunReport, reports_url: str, conn_id: str | None = STORAGE_CONN_ID
) -> tuple[str, str]:
    """Render the report and write ``<reports_url>/<dag_id>/<run_id>.md`` and ``.html``.

    Both are rendered before either is written (a template error writes nothing).
    Returns the two URLs.
    """
    markdown_url, html_url = report_urls(reports_url, report.dag_id, report.run_id)
    markdown, page = render_markdown(report), render_html(report)
    write_text(markdown_url, markdown, conn_id)
    write_text(html_url, page, conn_id)
    return markdown_url, html_url
