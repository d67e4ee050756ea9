"""The warehouse's tables as astro ``Table`` objects: the same Dataset in every DAG.

An astro ``Table`` is an Airflow ``Dataset`` whose URI is built from its connection id,
schema and name, e.g. ``astro://sparkify_postgres@?table=songplays&schema=public``. A task
that lists it in its ``outlets`` emits an event on that URI when it succeeds, and a DAG
scheduled on it (``schedule=[warehouse_table("songplays")]``) runs after each event. Both
sides must build the Table the same way, hence this one function.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sparkify.config import Target, current_target

if TYPE_CHECKING:
    from astro.table import Table


def warehouse_table(name: str, target: Target | None = None) -> Table:
    """The table ``name`` of the target's warehouse (default: ``SPARKIFY_TARGET``'s)."""
    from astro.table import Metadata, Table

    target = target or current_target()
    return Table(
        name=name, conn_id=target.warehouse_conn_id, metadata=Metadata(schema=target.schema)
    )
