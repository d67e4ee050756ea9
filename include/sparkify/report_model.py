"""The data of a run report: what a report shows, before any rendering.

``RunReport`` holds rows per table before and after the run, the run's rejected records,
its quality checks and one ``TaskTiming`` per task instance. It knows the run's outcome;
how it reads in Markdown or HTML is the business of ``sparkify.report_render`` and its
templates. Nothing here imports Airflow: task instances are anything with ``task_id``,
``state``, ``start_date``, ``end_date``, ``duration``, ``try_number`` (and ``map_index``).

Runs overlap (up to 32 at once), so which rows of a table a count covers is declared
here, once: ``TABLE_SCOPES`` maps each table to its ``CountScope`` (this run's rows, the
run's data interval, or the whole table every run shares). ``RowSnapshot`` is the counts
of one moment with the scope each was taken in (the snapshot task's XCom, as JSON).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# Every table the pipeline loads, in the order of the data's flow.
REPORT_TABLES = (
    "staging_events", "staging_songs", "songplays", "users", "songs", "artists", "time",
)  # fmt: skip
MAX_REJECTS_SHOWN = 20
FAILED_STATES = frozenset({"failed", "upstream_failed"})
REPORT_TASK_STATE = "running (this report)"
NO_STATUS = "no status"

Count = int | None  # None: the table does not exist


@dataclass(frozen=True)
class CountScope:
    """Which rows of a table the report counts, before and after the run.

    :param key: the scope's name in a ``RowSnapshot`` (``run``, ``interval``, ``table``).
    :param label: how the report names it, next to each count.
    :param sql: the query, ``include/sql/<sql>.sql`` (``{{ table }}``, bind parameters).
    :param column: the column it filters on (``None``: whole table); a table without it
        (older than the column) holds none of the scope's rows.
    :param parameters: the bind parameters it needs; without them the count is unknown.
    :param note: what the counts mean, printed under the table.
    """

    key: str
    label: str
    sql: str
    column: str | None = None
    parameters: tuple[str, ...] = ()
    note: str = ""


RUN_ROWS = CountScope(
    "run", "this run's rows", "report_count_run_rows", "run_id", ("run_id",),
    note="rows with this run's run_id; rows other runs staged are not counted.",
)  # fmt: skip
INTERVAL_ROWS = CountScope(
    "interval", "the run's interval", "report_count_interval_rows", "start_time",
    ("interval_start", "interval_end"),
    note="rows whose start_time lies in the run's data interval; other intervals' rows "
    "are not counted (before: what an earlier run of the interval left, which this run "
    "replaces).",
)  # fmt: skip
WHOLE_TABLE = CountScope(
    "table", "whole table (shared by runs)", "report_count_rows",
    note="the whole table, which every run rewrites: with runs overlapping, its change "
    "may include other runs' writes.",
)  # fmt: skip
# Which rows of each table a report counts (a table not named here: whole).
TABLE_SCOPES: dict[str, CountScope] = {
    "staging_events": RUN_ROWS,  # each run stages and reads its own rows
    "staging_songs": WHOLE_TABLE,  # the song files' mirror, rewritten by every run
    "songplays": INTERVAL_ROWS,  # a run replaces its interval's plays
    "users": WHOLE_TABLE,
    "songs": WHOLE_TABLE,
    "artists": WHOLE_TABLE,
    "time": INTERVAL_ROWS,  # a run replaces its interval's start times
}


def scope_of(table: str, scopes: Mapping[str, CountScope] | None = None) -> CountScope:
    """The scope ``table``'s rows are counted in (``scopes``: default ``TABLE_SCOPES``)."""
    return (TABLE_SCOPES if scopes is None else scopes).get(table, WHOLE_TABLE)


@dataclass(frozen=True)
class RowSnapshot:
    """Rows per table at one moment, each with the key of the scope it was counted in.

    :param rows: table -> rows (``None``: absent); a table missing here is "unknown".
    :param scopes: table -> ``CountScope.key`` of its count.
    """

    rows: Mapping[str, Count]
    scopes: Mapping[str, str]

    def count(self, table: str, scope: CountScope) -> tuple[Count, bool]:
        """``(rows, known)``: known only when ``table`` was counted in ``scope``."""
        if table not in self.rows or self.scopes.get(table) != scope.key:
            return None, False
        return self.rows[table], True

    def to_xcom(self) -> dict[str, dict[str, Any]]:
        """``{"rows": {table: rows}, "scopes": {table: key}}``: plain JSON."""
        return {"rows": dict(self.rows), "scopes": dict(self.scopes)}

    @classmethod
    def from_xcom(cls, value: Any) -> RowSnapshot | None:
        """The snapshot in ``value`` (``to_xcom``'s shape); ``None`` when there is none.

        An older snapshot's flat ``{table: rows}`` counted whole tables: it still gives the
        shared tables' "before", the scoped ones read "unknown".
        """
        if isinstance(value, RowSnapshot):
            return value
        if not isinstance(value, Mapping) or not value:
            return None
        if isinstance(value.get("rows"), Mapping) and isinstance(value.get("scopes"), Mapping):
            return cls(dict(value["rows"]), {str(t): str(k) for t, k in value["scopes"].items()})
        if all(v is None or isinstance(v, int) for v in value.values()):
            return cls(dict(value), dict.fromkeys(value, WHOLE_TABLE.key))
        return None


@dataclass(frozen=True)
class TableCount:
    """Rows of one table at the start (``before``) and at the end (``after``) of the run,
    in ``scope``; ``*_known`` False: not counted in that scope ("unknown")."""

    table: str
    before: Count
    after: Count
    scope: CountScope = WHOLE_TABLE
    before_known: bool = True
    after_known: bool = True


@dataclass(frozen=True)
class CheckRow:
    """One quality check's result, as ``data_quality_results`` holds it."""

    name: str
    table: str
    passed: bool
    observed: str
    expected: str


@dataclass(frozen=True)
class RejectRow:
    """One record staging set aside, as ``staging_rejects`` holds it."""

    table: str
    source_key: str
    line_number: int
    reason: str


@dataclass(frozen=True)
class TaskTiming:
    """One task instance of the run."""

    task_id: str
    state: str  # "success", "failed", ..., "no status" when not run (yet)
    start: datetime | None
    end: datetime | None
    duration: float | None  # seconds
    try_number: int | None


@dataclass(frozen=True)
class RunReport:
    """Everything a report shows; ``sparkify.report_render`` turns it into text.

    ``before_taken`` is False when no snapshot of the counts exists (its task failed):
    "before" reads "unknown". ``warehouse_error``: the warehouse could not be read at
    report time; counts after, checks and rejects are unknown, the rest still stands.
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
        """Rejected records of the run, all tables (not only the ones listed)."""
        return sum(self.rejects_by_table.values())

    @property
    def failed_tasks(self) -> list[str]:
        """Tasks that failed or did not run because an upstream task failed."""
        return [t.task_id for t in self.tasks if t.state in FAILED_STATES]

    @property
    def failed_checks(self) -> list[str]:
        return [c.name for c in self.checks if not c.passed]

    @property
    def succeeded(self) -> bool:
        return not self.failed_tasks and not self.failed_checks

    @property
    def warehouse_known(self) -> bool:
        """Whether counts after the run, checks and rejects could be read."""
        return self.warehouse_error is None

    def before_known(self, row: TableCount) -> bool:
        """Whether ``row``'s count before the run is known (a snapshot, in its scope)."""
        return self.before_taken and row.before_known

    def after_known(self, row: TableCount) -> bool:
        """Whether ``row``'s count after the run is known (the warehouse was read)."""
        return self.warehouse_known and row.after_known

    def scope_notes(self) -> list[tuple[CountScope, list[str]]]:
        """Each scope the tables are counted in, with its tables, in the tables' order."""
        notes: dict[str, tuple[CountScope, list[str]]] = {}
        for row in self.tables:
            notes.setdefault(row.scope.key, (row.scope, []))[1].append(row.table)
        return list(notes.values())

    def outcome(self) -> str:
        """``succeeded``, or ``FAILED - `` and what failed."""
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


def utc(moment: datetime | None) -> datetime | None:
    """``moment`` in UTC; a naive datetime is taken as UTC."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _state(value: Any) -> str:
    if value is None:
        return NO_STATUS
    return str(getattr(value, "value", value))


def task_timings(
    task_instances: Iterable[Any], report_task_id: str | None = None
) -> tuple[TaskTiming, ...]:
    """One row per task instance, in the order they started (not started last).

    A task instance run without a start date (``airflow dags test`` records none) sorts by
    its end. The report's own task shows as ``running (this report)``. Tasks still running
    or not started (the report may run before every task is done) keep their state.
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
        moment = utc(row.start or row.end)
        return (moment is None, moment or datetime.max.replace(tzinfo=UTC), row.task_id)

    return tuple(sorted(rows, key=order))
