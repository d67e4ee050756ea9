"""Apply ``airflow_settings.yaml`` (the Astro CLI's format) to a native Airflow.

``astro dev start`` does this inside Docker; without the Astro CLI, ``make run`` and
``make test`` call this module so the same file stays the single place for connections,
pools and variables. Applying twice gives the same result (existing ids are replaced).

The host rule: the file names the local servers by their compose service names
(``docker-compose.override.yml``), which resolve inside the Astro CLI's containers.
Natively the same servers listen on loopback, on the same ports: ``native_entry`` maps
exactly the names in ``LOCAL_HOSTS`` to 127.0.0.1 and leaves every other host alone.

    python -m dev.local_stack.airflow_settings [path/to/airflow_settings.yaml]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "airflow_settings.yaml"

# Compose service name -> where the native stack (dev/local_stack/stack.py) listens.
LOCAL_HOSTS = {"sparkify-warehouse": "127.0.0.1", "sparkify-s3": "127.0.0.1"}


def native_host(host: str | None) -> str | None:
    """``host`` as the native path reaches it."""
    return LOCAL_HOSTS.get(host, host) if host else host


def native_url(url: str) -> str:
    """``url`` with its host mapped by ``native_host`` (scheme, port and path kept)."""
    parts = urlsplit(url)
    if parts.hostname not in LOCAL_HOSTS:
        return url
    netloc = native_host(parts.hostname) + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def native_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """A connection entry of the settings file as the native path needs it."""
    result = {**entry, "conn_host": native_host(entry.get("conn_host"))}
    extra = entry.get("conn_extra")
    if isinstance(extra, str) and extra.strip():
        extra = json.loads(extra)
    if isinstance(extra, dict) and extra.get("endpoint_url"):
        result["conn_extra"] = {**extra, "endpoint_url": native_url(extra["endpoint_url"])}
    return result


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


def variables(path: Path = DEFAULT_PATH) -> dict[str, str]:
    """The file's variables, name -> value."""
    return {v["variable_name"]: str(v["variable_value"]) for v in read_settings(path)["variables"]}


def environment(
    database: str | None = None,
    bucket: str | None = None,
    s3_endpoint: str | None = None,
    s3_secret: str | None = None,
    path: Path = DEFAULT_PATH,
) -> dict[str, str]:
    """The file as ``AIRFLOW_CONN_*`` and ``AIRFLOW_VAR_*`` variables for the native path.

    Environment connections and variables take precedence over the metadata DB, which
    lets a test or a benchmark aim the DAGs at a throwaway ``database`` (of the warehouse
    connection) and ``bucket``; ``s3_endpoint`` and ``s3_secret`` replace the S3
    connection's endpoint and secret key (for fault and secret-masking tests).
    """
    from sparkify.config import (
        AWS_CONN_ID,
        BUCKET_VARIABLE,
        REPORTS_URL_VARIABLE,
        WAREHOUSE_CONN_ID,
    )

    env = {}
    for entry in read_settings(path)["connections"]:
        kwargs = connection_kwargs(native_entry(entry))
        if entry["conn_id"] == WAREHOUSE_CONN_ID and database:
            kwargs["schema"] = database
        document = {k: v for k, v in kwargs.items() if k != "conn_id" and v is not None}
        if document.get("extra"):
            document["extra"] = json.loads(document["extra"])
        if entry["conn_id"] == AWS_CONN_ID:
            if s3_endpoint:
                document["extra"]["endpoint_url"] = s3_endpoint
            if s3_secret:
                document["password"] = s3_secret
        # Airflow reads AIRFLOW_CONN_<conn_id upper-cased>: for `aws-redshift` the name
        # keeps its hyphen (a process environment allows it, a shell's `export` does not).
        env[f"AIRFLOW_CONN_{entry['conn_id'].upper()}"] = json.dumps(document)
    for name, value in variables(path).items():
        env[f"AIRFLOW_VAR_{name.upper()}"] = value
    if bucket:
        env[f"AIRFLOW_VAR_{BUCKET_VARIABLE.upper()}"] = bucket
        env[f"AIRFLOW_VAR_{REPORTS_URL_VARIABLE.upper()}"] = f"s3://{bucket}/reports"
    return env


def apply(path: Path = DEFAULT_PATH) -> dict[str, int]:
    """Write the file's connections (hosts mapped for the native path), pools and
    variables into Airflow's metadata DB."""
    from airflow.models import Connection, Pool, Variable
    from airflow.utils.session import create_session

    settings = read_settings(path)
    with create_session() as session:
        for entry in settings["connections"]:
            session.query(Connection).filter(Connection.conn_id == entry["conn_id"]).delete()
            session.add(Connection(**connection_kwargs(native_entry(entry))))
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
