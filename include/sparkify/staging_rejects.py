"""Bad records: why one was not staged, and how many a load tolerates.

Both staging paths use these: the PostgreSQL loader (``json_copy``) for the records its
encoder or the staging rules refuse, the Redshift path (``redshift_copy``) for the rows a
COPY skipped or a rule refused after it. Either way they are collected by one
``RejectCollector`` per load and written to the rejects table by ``record``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sparkify import sql

# A rejected line is kept whole up to this many characters (Redshift's VARCHAR maximum).
REJECT_LINE_CHARS = 65535


class StagingError(ValueError):
    """A record could not be staged; the message names the object and line."""


class RecordError(StagingError):
    """One bad record: ``where`` (object and line) and ``reason``, kept apart for rejects."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


class TooManyRejectsError(StagingError):
    """More bad records than the load tolerates; the message names the first ones."""


@dataclass(frozen=True)
class Reject:
    """A record that was not staged, and why; ``line_number`` is None when unknown (a row
    a Redshift COPY loaded and a rule then refused)."""

    source_key: str
    line_number: int | None
    reason: str
    raw_line: str | None


def _order(reject: Reject) -> tuple[str, int, str, str]:
    # Rows a rule refused after a Redshift COPY share object and (no) line: the reason and
    # values then keep the order stable, whatever order the database returned them in.
    line = -1 if reject.line_number is None else reject.line_number
    return reject.source_key, line, reject.reason, reject.raw_line or ""


class RejectCollector:
    """Collects bad records (from worker threads too); raises once there are too many.

    :param max_rejects: how many bad records the load tolerates (like Redshift's MAXERROR,
        but over the whole load); one more raises ``TooManyRejectsError`` naming the first
        offenders.
    """

    def __init__(self, max_rejects: int) -> None:
        if max_rejects < 0:
            raise ValueError("max_rejects must be >= 0")
        self.max_rejects = max_rejects
        self._rejects: list[Reject] = []
        self._lock = threading.Lock()

    def add(
        self, key: str, line_number: int | None, error: RecordError, line: bytes | str | None
    ) -> None:
        """Set one record aside.

        :param key: the object it came from.
        :param line_number: its line in the object, or None when unknown.
        :param error: why (its ``reason`` is kept).
        :param line: the record as read (bytes are decoded, invalid UTF-8 replaced), or None.
        """
        raw = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
        raw = None if raw is None else raw[:REJECT_LINE_CHARS]
        reject = Reject(key, line_number, error.reason, raw)
        with self._lock:
            self._rejects.append(reject)
            too_many = len(self._rejects) > self.max_rejects
        if too_many:
            offenders = "; ".join(
                f"{r.source_key}{'' if r.line_number is None else f' line {r.line_number}'}: "
                f"{r.reason}"
                for r in self.rejects[:5]
            )
            raise TooManyRejectsError(
                f"more than {self.max_rejects} bad record(s) (max_rejects); first: {offenders}"
            )

    def __len__(self) -> int:
        with self._lock:
            return len(self._rejects)

    @property
    def rejects(self) -> list[Reject]:
        """Every reject so far, by object and line."""
        with self._lock:
            return sorted(self._rejects, key=_order)


def record(
    cursor: Any, rejects_table: str, run_id: str, table_name: str, rejects: Sequence[Reject]
) -> None:
    """Replace a run's rejects for one table (a re-run does not pile them up).

    :param cursor: a cursor inside the load's transaction.
    :param rejects_table: the validated, quoted rejects table.
    :param run_id: the run whose rejects these are.
    :param table_name: the staging table they were refused from.
    :param rejects: the load's rejects, in order.
    """
    cursor.execute(
        sql.delete_run_rejects(rejects_table), {"run_id": run_id, "table_name": table_name}
    )
    if not rejects:
        return
    now = datetime.now(UTC).replace(tzinfo=None)
    cursor.executemany(
        sql.insert_reject(rejects_table),
        [
            (run_id, table_name, r.source_key, r.line_number, r.reason[:1024], r.raw_line, now)
            for r in rejects
        ],
    )
