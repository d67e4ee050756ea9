"""The data of a run report: what a report shows, before any rendering.

``RunReport`` holds rows per table before and after the run, the run's rejected records,
its quality checks and one ``TaskTiming`` per task instance. It knows the run's outcome;
how it reads in Markdown or HTML is the business of ``sparkify.report_render`` and its
templates. Nothing here imports Airflow: task instances are anything with ``task_id``,
``state``, ``start_date``, ``end_date``, ``duration``, ``try_number`` (and ``map_index``).
"""

from __future__ import annotations

from collections.abc import Iterable
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
class TableCount:
    """Rows of one table at the start (``before``) and at the end (``after``) of the run."""

    table: str
    before: Count
    after: Count


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

    @property
    def has_staging(self) -> bool:
        return any(t.table.startswith("staging_") for t in self.tables)

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
