"""A DAG run's report: rows per table before and after, rejects, quality checks, task times.

The data is read through a DB-API cursor (the warehouse's ``staging_rejects`` and
``data_quality_results`` for the run's id, ``COUNT(*)`` per table) and from task-instance
objects (anything with ``task_id``, ``state``, ``start_date``, ``end_date``, ``duration``,
``try_number``), then rendered as Markdown and as HTML (every value escaped). Nothing here
imports Airflow; the operators in ``plugins/operators/run_report.py`` do the wiring.

Reports go to ``<reports dir>/<dag_id>/<run_id>.md|.html``; the reports dir is
``SPARKIFY_REPORTS_DIR``, else ``$AIRFLOW_HOME/reports``.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sparkify.sql import qualified

# Every table the pipeline loads, in the order of the data's flow.
REPORT_TABLES = (
    "staging_events", "staging_songs", "songplays", "users", "songs", "artists", "time",
)  # fmt: skip
REPORTS_DIR_ENV = "SPARKIFY_REPORTS_DIR"
MAX_REJECTS_SHOWN = 20
MAX_TEXT = 200  # characters of a free-text value (a reason, an observed value) shown
FAILED_STATES = frozenset({"failed", "upstream_failed"})
STAGING_NOTE = "Staging tables hold the latest run's input only: their change is no growth."

Count = int | None  # None: the table does not exist


# --------------------------------------------------------------------------- where


def reports_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``SPARKIFY_REPORTS_DIR``, else ``$AIRFLOW_HOME/reports`` (``~/airflow/reports``)."""
    environ = os.environ if environ is None else environ
    if environ.get(REPORTS_DIR_ENV):
        return Path(environ[REPORTS_DIR_ENV]).expanduser()
    return Path(environ.get("AIRFLOW_HOME") or "~/airflow").expanduser() / "reports"


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def safe_file_name(name: str) -> str:
    """``name`` as one file name: ``:``, ``+``, ``/``, spaces... become ``_``; never hidden
    or empty. The name needs no escaping in a ``file://`` URI or a shell.

    ``scheduled__2018-11-02T00:00:00+00:00`` -> ``scheduled__2018-11-02T00_00_00_00_00``.
    """
    safe = _UNSAFE.sub("_", str(name)).lstrip(".")[:200]
    return safe or "_"


def report_paths(folder: Path, dag_id: str, run_id: str) -> tuple[Path, Path]:
    """The Markdown and HTML paths of a run's report."""
    base = Path(folder) / safe_file_name(dag_id) / safe_file_name(run_id)
    return base.with_name(base.name + ".md"), base.with_name(base.name + ".html")


def latest_report(folder: Path, dag_id: str, since: float | None = None) -> Path | None:
    """The newest Markdown report of ``dag_id`` (modified at or after ``since``, if given)."""
    candidates = [
        path
        for path in (Path(folder) / safe_file_name(dag_id)).glob("*.md")
        if since is None or path.stat().st_mtime >= since
    ]
    return max(candidates, key=lambda p: (p.stat().st_mtime, p.name), default=None)


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class TableCount:
    table: str
    before: Count
    after: Count


@dataclass(frozen=True)
class CheckRow:
    name: str
    table: str
    passed: bool
    observed: str
    expected: str


@dataclass(frozen=True)
class RejectRow:
    table: str
    source_key: str
    line_number: int
    reason: str


@dataclass(frozen=True)
class TaskTiming:
    task_id: str
    state: str  # "success", "failed", ..., "no status" when not run (yet)
    start: datetime | None
    end: datetime | None
    duration: float | None  # seconds
    try_number: int | None


@dataclass(frozen=True)
class RunReport:
    """Everything a report shows; ``render_markdown``/``render_html`` turn it into text.

    ``before_taken`` is False when no snapshot of the counts exists (its task failed):
    the "before" column then reads "unknown". ``warehouse_error`` is set when the
    warehouse could not be read at report time: counts after, checks and rejects are then
    unknown, the rest of the report still stands.
    """

    dag_id: str
    run_id: str
    interval_start: datetime | None
    interval_end: datetime | None
    generated_at: datetime
    tables: tuple[TableCount, ...]
    checks: tuple[CheckRow, ...] = ()
    rejects: tuple[RejectRow, ...] = ()  # the first ones, at most ``max_rejects_shown``
    rejects_by_table: dict[str, int] = field(default_factory=dict)
    tasks: tuple[TaskTiming, ...] = ()
    run_started: datetime | None = None
    before_taken: bool = True
    warehouse_error: str | None = None
    report_task_id: str | None = None

    @property
    def rejects_total(self) -> int:
        return sum(self.rejects_by_table.values())

    @property
    def failed_tasks(self) -> list[str]:
        return [t.task_id for t in self.tasks if t.state in FAILED_STATES]

    @property
    def failed_checks(self) -> list[str]:
        return [c.name for c in self.checks if not c.passed]

    @property
    def succeeded(self) -> bool:
        return not self.failed_tasks and not self.failed_checks

    def outcome(self) -> str:
        if self.succeeded:
            return "succeeded"
        parts = []
        failed = [t.task_id for t in self.tasks if t.state == "failed"]
        skipped = [t.task_id for t in self.tasks if t.state == "upstream_failed"]
        if failed:
            parts.append("failed task(s): " + ", ".join(failed))
        if skipped:
            parts.append(f"{len(skipped)} task(s) not run (upstream failed)")
        if self.failed_checks:
            parts.append("failed check(s): " + ", ".join(self.failed_checks))
        return "FAILED - " + "; ".join(parts)

    def checks_summary(self) -> str:
        if self.warehouse_error:
            return "unknown (the warehouse could not be read)"
        if not self.checks:
            return "no results recorded for this run"
        passed = sum(1 for c in self.checks if c.passed)
        return f"{passed} of {len(self.checks)} passed"

    def rejects_summary(self) -> str:
        if self.warehouse_error:
            return "unknown (the warehouse could not be read)"
        if not self.rejects_total:
            return "none"
        per_table = ", ".join(f"{t} {n:,}" for t, n in sorted(self.rejects_by_table.items()))
        return f"{self.rejects_total:,} ({per_table})"


# --------------------------------------------------------------------------- reading


def existing_tables(cursor: Any, schema: str) -> set[str]:
    """Names of the tables in ``schema`` (information_schema: PostgreSQL and Redshift)."""
    cursor.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %(schema)s",
        {"schema": schema},
    )
    return {row[0] for row in cursor.fetchall()}


def count_rows(
    cursor: Any, schema: str = "public", tables: Sequence[str] = REPORT_TABLES
) -> dict[str, Count]:
    """Rows per table, ``None`` for a table that does not exist (yet: the first run)."""
    present = existing_tables(cursor, schema)
    counts: dict[str, Count] = {}
    for table in tables:
        if table not in present:
            counts[table] = None
            continue
        cursor.execute(f"SELECT COUNT(*) FROM {qualified(schema, table)}")  # noqa: S608
        counts[table] = int(cursor.fetchone()[0])
    return counts


def read_check_results(cursor: Any, results_table: str, run_id: str) -> list[CheckRow]:
    """The run's check results, failed first; of its latest attempt when it was retried.

    One execution of the checks records all its rows with one ``checked_at``.
    """
    cursor.execute(
        "SELECT check_name, table_name, passed, observed, expected "  # noqa: S608
        f"FROM {results_table} WHERE run_id = %(run_id)s AND checked_at = "
        f"(SELECT MAX(checked_at) FROM {results_table} WHERE run_id = %(run_id)s) "
        "ORDER BY passed, table_name, check_name",
        {"run_id": run_id},
    )
    return [
        CheckRow(name, table, bool(passed), "" if observed is None else str(observed),
                 "" if expected is None else str(expected))
        for name, table, passed, observed, expected in cursor.fetchall()
    ]  # fmt: skip


def read_rejects(
    cursor: Any, rejects_table: str, run_id: str, limit: int = MAX_REJECTS_SHOWN
) -> tuple[dict[str, int], list[RejectRow]]:
    """The run's rejected records: the count per table and the first ``limit`` of them."""
    cursor.execute(
        f"SELECT table_name, COUNT(*) FROM {rejects_table} "  # noqa: S608
        "WHERE run_id = %(run_id)s GROUP BY table_name",
        {"run_id": run_id},
    )
    by_table = {table: int(n) for table, n in cursor.fetchall()}
    rows: list[RejectRow] = []
    if by_table and limit > 0:
        cursor.execute(
            f"SELECT table_name, source_key, line_number, reason FROM {rejects_table} "  # noqa: S608
            "WHERE run_id = %(run_id)s ORDER BY table_name, source_key, line_number "
            f"LIMIT {int(limit)}",
            {"run_id": run_id},
        )
        rows = [RejectRow(t, k, int(n), r) for t, k, n, r in cursor.fetchall()]
    return by_table, rows


def _state(value: Any) -> str:
    if value is None:
        return "no status"
    return str(getattr(value, "value", value))


REPORT_TASK_STATE = "running (this report)"


def task_timings(
    task_instances: Iterable[Any], report_task_id: str | None = None
) -> tuple[TaskTiming, ...]:
    """One row per task instance, in the order they started (not started last).

    A task instance run without a start date (``airflow dags test`` records none) sorts by
    its end. The report's own task shows as ``running (this report)``.
    """
    rows = []
    for ti in task_instances:
        start, end = getattr(ti, "start_date", None), getattr(ti, "end_date", None)
        duration = getattr(ti, "duration", None)
        if duration is None and start and end:
            duration = (end - start).total_seconds()
        task_id = ti.task_id
        map_index = getattr(ti, "map_index", -1)
        if isinstance(map_index, int) and map_index >= 0:
            task_id = f"{task_id}[{map_index}]"
        state = _state(getattr(ti, "state", None))
        if task_id == report_task_id:
            state, end, duration = REPORT_TASK_STATE, None, None
        rows.append(
            TaskTiming(task_id, state, start, end,
                       None if duration is None else float(duration),
                       getattr(ti, "try_number", None))
        )  # fmt: skip

    def order(row: TaskTiming) -> tuple:
        moment = _utc(row.start or row.end)
        return (moment is None, moment or datetime.max.replace(tzinfo=UTC), row.task_id)

    return tuple(sorted(rows, key=order))


def build_report(
    cursor: Any | None,
    *,
    dag_id: str,
    run_id: str,
    interval_start: datetime | None,
    interval_end: datetime | None,
    before: Mapping[str, Count] | None,
    task_instances: Iterable[Any] = (),
    schema: str = "public",
    tables: Sequence[str] = REPORT_TABLES,
    rejects_table: str = "staging_rejects",
    results_table: str = "data_quality_results",
    max_rejects_shown: int = MAX_REJECTS_SHOWN,
    run_started: datetime | None = None,
    generated_at: datetime | None = None,
    warehouse_error: str | None = None,
    report_task_id: str | None = None,
) -> RunReport:
    """Read what the report shows. ``cursor=None`` (with ``warehouse_error``): DB unknown.

    ``before`` is the snapshot taken at the start of the run (table -> rows, ``None`` for
    an absent table), or ``None`` when there is none.
    """
    after: dict[str, Count] = {}
    checks: list[CheckRow] = []
    rejects: list[RejectRow] = []
    by_table: dict[str, int] = {}
    if cursor is not None:
        present = existing_tables(cursor, schema)
        after = count_rows(cursor, schema, tables)
        if results_table in present:
            checks = read_check_results(cursor, qualified(schema, results_table), run_id)
        if rejects_table in present:
            by_table, rejects = read_rejects(
                cursor, qualified(schema, rejects_table), run_id, max_rejects_shown
            )
    elif warehouse_error is None:
        warehouse_error = "no connection to the warehouse"
    before = before or {}
    return RunReport(
        dag_id=dag_id,
        run_id=run_id,
        interval_start=interval_start,
        interval_end=interval_end,
        generated_at=generated_at or datetime.now(UTC),
        tables=tuple(TableCount(t, before.get(t), after.get(t)) for t in tables),
        checks=tuple(checks),
        rejects=tuple(rejects),
        rejects_by_table=by_table,
        tasks=task_timings(task_instances, report_task_id),
        run_started=run_started,
        before_taken=bool(before),
        warehouse_error=warehouse_error,
        report_task_id=report_task_id,
    )


# --------------------------------------------------------------------------- formatting


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def format_time(moment: datetime | None) -> str:
    """``2018-11-02 00:00:00 UTC`` (naive datetimes are UTC); ``-`` for none."""
    moment = _utc(moment)
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def format_duration(seconds: float | None) -> str:
    """``0.8 s``, ``12.0 s``, ``3 min 05 s``, ``1 h 02 min``; ``-`` for none."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def format_count(count: Count, known: bool = True) -> str:
    if not known:
        return "unknown"
    return "absent" if count is None else f"{count:,}"


def format_change(row: TableCount, before_known: bool, after_known: bool) -> str:
    if not (before_known and after_known) or row.after is None:
        return ""
    change = row.after - (row.before or 0)
    return f"{change:+,}" if change else "0"


def _shorten(value: Any, limit: int = MAX_TEXT) -> str:
    text = " ".join(str(value).split())  # one line
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _summary(report: RunReport) -> list[tuple[str, str]]:
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


def _title(report: RunReport) -> str:
    return f"Run report: {report.dag_id} / {report.run_id}"


# --------------------------------------------------------------------------- Markdown


def md_code(value: Any, limit: int = MAX_TEXT) -> str:
    """A Markdown code span safe inside a table cell: HTML in it is shown, not run."""
    text = _shorten(value, limit).replace("|", "\\|")
    if not text:
        return ""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _md_text(value: Any) -> str:
    """Plain text for Markdown: the characters that could start markup escaped.

    (Underscores inside words, as in task ids, are no markup in CommonMark: left alone.)
    """
    return re.sub(r"([\\`*\[\]<>|]|(?<!\w)_|_(?!\w))", r"\\\1", _shorten(value, 10 * MAX_TEXT))


def _md_table(header: Sequence[str], rows: Iterable[Sequence[str]], right: set[int]) -> list[str]:
    align = ["---:" if i in right else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def render_markdown(report: RunReport) -> str:
    """The report as GitHub-flavoured Markdown."""
    known_after = report.warehouse_error is None
    lines = [f"# {_md_text(_title(report))}", ""]
    lines += [f"- **{label}:** {_md_text(value)}" for label, value in _summary(report)]

    lines += ["", "## Rows per table", ""]
    lines += _md_table(
        ["table", "before", "after", "change"],
        (
            [md_code(t.table), format_count(t.before, report.before_taken),
             format_count(t.after, known_after),
             format_change(t, report.before_taken, known_after)]
            for t in report.tables
        ),
        right={1, 2, 3},
    )  # fmt: skip
    if any(t.table.startswith("staging_") for t in report.tables):
        lines += ["", STAGING_NOTE]

    lines += ["", f"## Data quality checks: {_md_text(report.checks_summary())}", ""]
    if report.checks:
        lines += _md_table(
            ["check", "table", "result", "observed", "expected"],
            (
                [md_code(c.name), md_code(c.table), "passed" if c.passed else "**FAILED**",
                 md_code(c.observed), md_code(c.expected)]
                for c in report.checks
            ),
            right=set(),
        )  # fmt: skip
    else:
        lines.append("No check results for this run: see the tasks' states below.")

    lines += ["", f"## Rejected records: {_md_text(report.rejects_summary())}", ""]
    if report.rejects:
        shown = len(report.rejects)
        if shown < report.rejects_total:
            lines += [f"The first {shown} of {report.rejects_total:,}:", ""]
        lines += _md_table(
            ["table", "source key", "line", "reason"],
            (
                [md_code(r.table), md_code(r.source_key), str(r.line_number), md_code(r.reason)]
                for r in report.rejects
            ),
            right={2},
        )
    elif not report.warehouse_error:
        lines.append("No record was set aside.")

    lines += ["", "## Tasks", ""]
    lines += _md_table(
        ["task", "state", "start", "end", "duration", "try"],
        (
            [md_code(t.task_id), _md_text(t.state), format_time(t.start), format_time(t.end),
             format_duration(t.duration), "" if t.try_number is None else str(t.try_number)]
            for t in report.tasks
        ),
        right={4, 5},
    )  # fmt: skip
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- HTML

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.failed { color: #b00020; font-weight: bold; }
.passed { color: #1b7f3b; }
code { font-size: 0.95em; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _html_table(
    header: Sequence[str], rows: Iterable[Sequence[tuple[str, str]]], right: set[int]
) -> list[str]:
    """Cells are (already escaped HTML, css class)."""
    lines = ["<table>", "<tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr>"]
    for row in rows:
        cells = []
        for i, (content, css) in enumerate(row):
            classes = " ".join(filter(None, ["num" if i in right else "", css]))
            attribute = f' class="{classes}"' if classes else ""
            cells.append(f"<td{attribute}>{content}</td>")
        lines.append("<tr>" + "".join(cells) + "</tr>")
    lines.append("</table>")
    return lines


def _code(value: Any) -> tuple[str, str]:
    text = _shorten(value, 10 * MAX_TEXT)
    return (f"<code>{_e(text)}</code>" if text else "", "")


def _plain(value: Any, css: str = "") -> tuple[str, str]:
    return (_e(value), css)


def render_html(report: RunReport) -> str:
    """The report as one self-contained HTML page; every value is escaped."""
    known_after = report.warehouse_error is None
    title = _e(_title(report))
    outcome_css = "passed" if report.succeeded else "failed"
    lines = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head><meta charset="utf-8">',
        f"<title>{title}</title>",
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>{title}</h1>",
        "<ul>",
    ]
    for label, value in _summary(report):
        css = f' class="{outcome_css}"' if label == "Outcome" else ""
        lines.append(f"<li><strong>{_e(label)}:</strong> <span{css}>{_e(value)}</span></li>")
    lines.append("</ul>")

    lines.append("<h2>Rows per table</h2>")
    lines += _html_table(
        ["table", "before", "after", "change"],
        (
            [_code(t.table), _plain(format_count(t.before, report.before_taken)),
             _plain(format_count(t.after, known_after)),
             _plain(format_change(t, report.before_taken, known_after))]
            for t in report.tables
        ),
        right={1, 2, 3},
    )  # fmt: skip
    if any(t.table.startswith("staging_") for t in report.tables):
        lines.append(f"<p>{_e(STAGING_NOTE)}</p>")

    lines.append(f"<h2>Data quality checks: {_e(report.checks_summary())}</h2>")
    if report.checks:
        lines += _html_table(
            ["check", "table", "result", "observed", "expected"],
            (
                [_code(c.name), _code(c.table),
                 _plain("passed", "passed") if c.passed else _plain("FAILED", "failed"),
                 _code(c.observed), _code(c.expected)]
                for c in report.checks
            ),
            right=set(),
        )  # fmt: skip
    else:
        lines.append("<p>No check results for this run: see the tasks' states below.</p>")

    lines.append(f"<h2>Rejected records: {_e(report.rejects_summary())}</h2>")
    if report.rejects:
        shown = len(report.rejects)
        if shown < report.rejects_total:
            lines.append(f"<p>The first {shown} of {report.rejects_total:,}:</p>")
        lines += _html_table(
            ["table", "source key", "line", "reason"],
            (
                [_code(r.table), _code(r.source_key), _plain(r.line_number), _code(r.reason)]
                for r in report.rejects
            ),
            right={2},
        )
    elif not report.warehouse_error:
        lines.append("<p>No record was set aside.</p>")

    lines.append("<h2>Tasks</h2>")
    lines += _html_table(
        ["task", "state", "start", "end", "duration", "try"],
        (
            [_code(t.task_id),
             _plain(t.state, "failed" if t.state in FAILED_STATES else ""),
             _plain(format_time(t.start)), _plain(format_time(t.end)),
             _plain(format_duration(t.duration)),
             _plain("" if t.try_number is None else t.try_number)]
            for t in report.tasks
        ),
        right={4, 5},
    )  # fmt: skip
    lines += ["</body>", "</html>"]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- writing


def _write(path: Path, text: str) -> None:
    """Write through a temporary file and a rename: a reader never sees half a report."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


def write_report(report: RunReport, folder: Path) -> tuple[Path, Path]:
    """Write the Markdown and HTML files; returns their (absolute) paths."""
    markdown, page = report_paths(Path(folder).resolve(), report.dag_id, report.run_id)
    markdown.parent.mkdir(parents=True, exist_ok=True)
    _write(markdown, render_markdown(report))
    _write(page, render_html(report))
    return markdown, page
