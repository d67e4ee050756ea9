"""A ``RunReport`` as Markdown and as HTML, through the Jinja2 templates in ``templates/``.

Both templates see the report, its title and summary lines, and the formatting helpers
of ``sparkify.report_format``. Escaping is the environment's job, not the template's:

- HTML: Jinja2's autoescape, so every value is escaped (a ``<script>`` in a reject reason
  reads as text);
- Markdown: every printed value goes through ``md_text`` (markup characters escaped)
  unless it is ``MarkdownSafe`` already, as the ``code`` filter's code spans are.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from sparkify.report_format import (
    format_change,
    format_count,
    format_duration,
    format_time,
    md_code,
    md_text,
    shorten,
)
from sparkify.report_model import FAILED_STATES, RunReport

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
MARKDOWN_TEMPLATE = "run_report.md.j2"
HTML_TEMPLATE = "run_report.html.j2"
SCOPES_INTRO = "Runs overlap, so each table's counts cover the rows named in its counts column:"


def title(report: RunReport) -> str:
    """``Run report: <dag_id> / <run_id>``."""
    return f"Run report: {report.dag_id} / {report.run_id}"


def summary_rows(report: RunReport) -> list[tuple[str, str]]:
    """The report's head: (label, value) for outcome, interval, times, checks, rejects."""
    interval = f"{format_time(report.interval_start)} to {format_time(report.interval_end)}"
    rows = [
        ("Outcome", report.outcome()),
        ("Data interval", interval),
        ("Run started", format_time(report.run_started)),
        ("Report written", format_time(report.generated_at)),
        ("Quality checks", report.checks_summary()),
        ("Rejected records", report.rejects_summary()),
    ]
    if report.warehouse_error:
        rows.append(("Warehouse", f"not readable at report time: {report.warehouse_error}"))
    return rows


def _environment(autoescape: bool, finalize: Callable[[Any], Any] | None) -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=autoescape,
        finalize=finalize,
        undefined=StrictUndefined,  # a misspelt field fails the render, never prints ""
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters.update(shorten=shorten, thousands=lambda n: f"{n:,}")
    environment.globals.update(
        count=format_count,
        change=format_change,
        time=format_time,
        duration=format_duration,
        scopes_intro=SCOPES_INTRO,
        failed_states=FAILED_STATES,
    )
    return environment


@cache
def markdown_environment() -> Environment:
    """Jinja2 for Markdown: values printed as escaped text; ``code`` makes a code span."""
    environment = _environment(autoescape=False, finalize=md_text)
    environment.filters["code"] = md_code
    return environment


@cache
def html_environment() -> Environment:
    """Jinja2 for HTML, autoescaped."""
    return _environment(autoescape=True, finalize=None)


def _context(report: RunReport) -> dict[str, Any]:
    return {"report": report, "title": title(report), "summary": summary_rows(report)}


def render_markdown(report: RunReport, template: str = MARKDOWN_TEMPLATE) -> str:
    """The report as GitHub-flavoured Markdown."""
    return markdown_environment().get_template(template).render(_context(report))


def render_html(report: RunReport, template: str = HTML_TEMPLATE) -> str:
    """The report as one self-contained HTML page; every value is escaped."""
    return html_environment().get_template(template).render(_context(report))
