"""Incremental staging: which objects are new, changed or gone since the last load.

A manifest table holds, per staging table, the key and ETag of every object the table
holds rows of. Comparing it with a fresh listing tells an incremental load what to read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sparkify import sql


@dataclass(frozen=True)
class ManifestDiff:
    """What an incremental load does: load ``changed``, forget ``removed``."""

    changed: list[str]  # new or with another ETag: (re)load their rows
    removed: list[str]  # no longer listed: drop their rows
    unchanged: int

    @property
    def stale(self) -> list[str]:
        """Keys whose rows in the staging table must go before the load."""
        return sorted({*self.changed, *self.removed})


def diff(listed: Mapping[str, str], manifest: Mapping[str, str]) -> ManifestDiff:
    """Compare a listing (key -> ETag) with the manifest (key -> ETag)."""
    changed = sorted(key for key, etag in listed.items() if manifest.get(key) != etag)
    removed = sorted(key for key in manifest if key not in listed)
    return ManifestDiff(changed, removed, unchanged=len(listed) - len(changed))


def forget_stale(
    cursor: Any,
    table: str,
    manifest_table: str,
    table_name: str,
    listed: Mapping[str, str],
    *,
    full_reload: bool,
    clear: str,
) -> ManifestDiff | None:
    """Drop the staging rows of changed and deleted objects, before an incremental load.

    Returns what to load, or None when everything is to be (re)loaded (``full_reload``,
    or no manifest yet): the table is then emptied by the statement ``clear``.

    :param cursor: a cursor inside the load's transaction.
    :param table: the validated, quoted staging table.
    :param manifest_table: the validated, quoted manifest table.
    :param table_name: the staging table's name, as the manifest keys it.
    :param listed: the fresh listing, key -> ETag.
    :param full_reload: ignore the manifest.
    :param clear: the statement emptying ``table`` (``sql.clear_table``).
    """
    known = {} if full_reload else read(cursor, manifest_table, table_name)
    if not known:
        cursor.execute(clear)
        return None
    plan = diff(listed, known)
    if plan.stale:
        cursor.execute(sql.delete_rows_of_objects(table), {"keys": plan.stale})
    return plan


def read(cursor: Any, manifest_table: str, table_name: str) -> dict[str, str]:
    cursor.execute(sql.manifest_select(manifest_table), {"table_name": table_name})
    return dict(cursor.fetchall())


def record(
    cursor: Any,
    manifest_table: str,
    table_name: str,
    loaded: Mapping[str, str],
    forget: list[str] | None = None,
) -> None:
    """Forget ``forget`` keys (all of the table's when None), then record ``loaded`` ones."""
    parameters = {"table_name": table_name, "keys": forget}
    cursor.execute(sql.manifest_forget(manifest_table, every_key=forget is None), parameters)
    now = datetime.now(UTC).replace(tzinfo=None)
    cursor.executemany(
        sql.manifest_insert(manifest_table),
        [(table_name, key, etag, now) for key, etag in sorted(loaded.items())],
    )
