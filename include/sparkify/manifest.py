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
