"""The warehouse's tables as astro ``Table`` objects: the same Dataset in every DAG.

An astro ``Table`` is an Airflow ``Dataset`` whose URI is built from its connection id,
schema and name, e.g. ``astro://redshift@?table=songplays&schema=public``. A task that
lists it in its ``outlets`` emits an event on that URI when it succeeds, and a DAG
scheduled on it (``schedule=[warehouse_table("songplays")]``) runs after each event. Both
sides must build the Table the same way, hence this one function.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sparkify.config import SCHEMA, WAREHOUSE_CONN_ID

if TYPE_CHECKING:
    from astro.table import Table


def warehouse_table(name: str, conn_id: str = WAREHOUSE_CONN_ID, schema: str = SCHEMA) -> Table:
    """The table ``name`` of the warehouse behind ``conn_id``."""
    from astro.table import Metadata, Table

    return Table(name=name, conn_id=conn_id, metadata=Metadata(schema=schema))
