"""Apply ``airflow_settings.yaml`` (the Astro CLI's format) to a native Airflow.

``astro dev start`` does this inside Docker; without the Astro CLI, ``make run`` and
``make test`` call this module so the same file stays the single place for connections,
pools and variables. Applying twice gives the same result (existing ids are replaced).

    python -m dev.local_stack.airflow_settings [path/to/airflow_settings.yaml]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "airflow_settings.yaml"


def read_settings(path: Path = DEFAULT_PATH) -> dict[str, list[dict[str, Any]]]:
    """The ``airflow:`` section: ``connections``, ``pools`` and ``variables`` lists."""
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    section = document.get("airflow") or {}
    settings = {key: list(section.get(key) or []) for key in ("connections", "pools", "variables")}
    for connection in settings["connections"]:
        if not connection.get("conn_id") or not connection.get("conn_type"):
            raise ValueError(f"{path}: every connection needs conn_id and conn_type: {connection}")
    return settings


def connection_kwargs(entry: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of ``airflow.models.Connection`` for one Astro-format entry."""
    extra = entry.get("conn_extra")
    if isinstance(extra, dict):
        extra = json.dumps(extra)
    port = entry.get("conn_port")
    return {
        "conn_id": entry["conn_id"],
        "conn_type": entry["conn_type"],
        "host": entry.get("conn_host") or None,
        "schema": entry.get("conn_schema") or None,
        "login": entry.get("conn_login") or None,
        "password": entry.get("conn_password") or None,
        "port": int(port) if port not in (None, "") else None,
        "extra": extra or None,
    }


def apply(path: Path = DEFAULT_PATH) -> dict[str, int]:
    """Write the file's connections, pools and variables into Airflow's metadata DB."""
    from airflow.models import Connection, Pool, Variable
    from airflow.utils.session import create_session

    settings = read_settings(path)
    with create_session() as session:
        for entry in settings["connections"]:
            session.query(Connection).filter(Connection.conn_id == entry["conn_id"]).delete()
            session.add(Connection(**connection_kwargs(entry)))
        for entry in settings["pools"]:
            Pool.create_or_update_pool(
                entry["pool_name"],
                int(entry["pool_slot"]),
                entry.get("pool_description", ""),
                include_deferred=False,
                session=session,
            )
    for entry in settings["variables"]:
        Variable.set(entry["variable_name"], entry["variable_value"])
    return {key: len(value) for key, value in settings.items()}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else DEFAULT_PATH
    counts = apply(path)
    print(f"applied {path.name}: " + ", ".join(f"{n} {key}" for key, n in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
