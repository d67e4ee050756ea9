"""Airflow's metadata database on the local PostgreSQL: what ``make airflow-db`` sets up.

As under the Astro CLI (a ``postgres`` service and LocalExecutor), the native Airflow
keeps its metadata in PostgreSQL, not SQLite: SQLite takes one writer at a time, so
Airflow only allows the SequentialExecutor on it, one task at a time. Here the database
is ``airflow_meta`` (``SPARKIFY_AIRFLOW_DB`` names another) on the local stack's
PostgreSQL (``127.0.0.1:8001``), owned by the ``sparkify`` role, which may create
databases (``stack.py`` gives it ``CREATEDB``).

``setup`` is idempotent: it creates the database when it is missing, runs
``airflow db migrate`` only when the database's alembic revision is not the installed
Airflow's head (a migrated database costs no migration), and applies
``airflow_settings.yaml`` (connections, pools, variables).

Every process of ``make airflow``/``make run`` gets the database through the environment
(``metadata_environment``): ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` and LocalExecutor,
each only where the environment does not set it already, so a test or a benchmark with a
private ``AIRFLOW_HOME`` (its own SQLite, or its own database) keeps its own.

    python -m dev.local_stack.airflow_metadata setup   # create + migrate + settings
    python -m dev.local_stack.airflow_metadata env     # `export ...` lines for a shell
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dev.local_stack.stack import HOST, PG_PASSWORD, PG_PORT, PG_USER, PROJECT_ROOT, STATE_DIR

DATABASE = os.environ.get("SPARKIFY_AIRFLOW_DB", "airflow_meta")
CONN_VARIABLE = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
EXECUTOR_VARIABLE = "AIRFLOW__CORE__EXECUTOR"
EXECUTOR = "LocalExecutor"


class MetadataError(RuntimeError):
    """The metadata database could not be created or migrated; the message says why."""


def sql_alchemy_conn(database: str = DATABASE, port: int | None = None) -> str:
    """SQLAlchemy URL of ``database`` on the local PostgreSQL (psycopg2, as in the image)."""
    return f"postgresql+psycopg2://{PG_USER}:{PG_PASSWORD}@{HOST}:{port or PG_PORT}/{database}"


def is_postgres(url: str | None) -> bool:
    return bool(url) and url.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "postgres")


def metadata_environment(
    env: Mapping[str, str] | None = None, database: str = DATABASE
) -> dict[str, str]:
    """``env`` (default: this process's) with the PostgreSQL metadata DB and LocalExecutor.

    A metadata URL or executor already in ``env`` is kept; LocalExecutor is only the
    default on PostgreSQL (Airflow refuses it on SQLite).
    """
    result = dict(os.environ if env is None else env)
    result.setdefault(CONN_VARIABLE, sql_alchemy_conn(database))
    if is_postgres(result[CONN_VARIABLE]):
        result.setdefault(EXECUTOR_VARIABLE, EXECUTOR)
    return result


# --------------------------------------------------------------------------- PostgreSQL


def _dsn(database: str) -> str:
    return f"postgresql://{PG_USER}:{PG_PASSWORD}@{HOST}:{PG_PORT}/{database}"


def _quoted(name: str) -> str:
    if not name or not name.replace("_", "").isalnum() or name[0].isdigit():
        raise ValueError(f"not a plain database name: {name!r}")
    return f'"{name}"'


def database_exists(database: str = DATABASE) -> bool:
    import psycopg2

    conn = psycopg2.connect(_dsn("postgres"))
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            return cursor.fetchone() is not None
    finally:
        conn.close()


def ensure_database(database: str = DATABASE) -> bool:
    """Create ``database`` (owner ``sparkify``) unless it exists; True when it was created."""
    import psycopg2
    from psycopg2 import errors

    name = _quoted(database)
    if database_exists(database):
        return False
    conn = psycopg2.connect(_dsn("postgres"))
    conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {name} OWNER {PG_USER}")
    except errors.DuplicateDatabase:
        return False  # created meanwhile by a concurrent setup
    finally:
        conn.close()
    return True


def drop_database(database: str) -> None:
    """Drop ``database`` (for tests of throwaway metadata DBs; never the default one)."""
    import psycopg2

    if database == DATABASE:
        raise ValueError(f"refusing to drop the shared metadata database {database!r}")
    from dev.local_stack.databases import drop_database as drop

    conn = psycopg2.connect(_dsn("postgres"))
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            drop(cursor, _quoted(database), database)
    finally:
        conn.close()


def clone_database(template: str, database: str) -> None:
    """(Re)create ``database`` as a copy of ``template`` (``CREATE DATABASE ... TEMPLATE``:
    a migrated metadata DB in well under a second, where ``airflow db migrate`` takes
    5-12 s). For throwaway databases: never the default one; ``template`` must have no
    open connections."""
    import psycopg2

    if database == DATABASE:
        raise ValueError(f"refusing to replace the shared metadata database {database!r}")
    drop_database(database)
    conn = psycopg2.connect(_dsn("postgres"))
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                f"CREATE DATABASE {_quoted(database)} TEMPLATE {_quoted(template)} OWNER {PG_USER}"
            )
    finally:
        conn.close()


def current_revisions(database: str = DATABASE) -> set[str]:
    """The alembic revision(s) ``database`` is at; empty before its first migration."""
    import psycopg2

    conn = psycopg2.connect(_dsn(database))
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT to_regclass('public.alembic_version') IS NOT NULL")
            if not cursor.fetchone()[0]:
                return set()
            cursor.execute("SELECT version_num FROM alembic_version")
            return {row[0] for row in cursor}
    finally:
        conn.close()


def head_revisions() -> set[str]:
    """The head revision(s) of the installed Airflow's migrations (no database touched)."""
    import logging

    import airflow  # noqa: F401 - configures logging first

    # alembic announces each of its plugins at INFO as it loads them.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from airflow.utils.db import _get_alembic_config
    from alembic.script import ScriptDirectory

    return set(ScriptDirectory.from_config(_get_alembic_config()).get_heads())


def _run(argv: list[str], env: Mapping[str, str], log_path: Path, what: str) -> None:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", encoding="utf-8") as log:
        code = subprocess.run(
            argv, env=dict(env), cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT
        ).returncode
    if code != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
        raise MetadataError(f"{what} failed (exit code {code}); end of {log_path}:\n{tail}")


def migrate(env: Mapping[str, str], database: str = DATABASE, log_path: Path | None = None) -> bool:
    """``airflow db migrate`` into ``database`` unless it is at head; True when it ran."""
    if current_revisions(database) == head_revisions():
        return False
    home = Path(env.get("AIRFLOW_HOME") or STATE_DIR / "airflow")
    argv = [sys.executable, "-m", "airflow", "db", "migrate"]
    _run(argv, env, log_path or home / "migrate.log", f"airflow db migrate of {database}")
    return True


@dataclass(frozen=True)
class SetupResult:
    database: str
    url: str
    created: bool
    migrated: bool
    settings: str


def setup(
    env: Mapping[str, str] | None = None,
    database: str = DATABASE,
    apply_settings: bool = True,
) -> SetupResult:
    """Create (when missing) and migrate (when behind) ``database``, apply the settings."""
    environment = metadata_environment(env, database)
    environment[CONN_VARIABLE] = sql_alchemy_conn(database)  # this database, whatever env says
    home = Path(environment.get("AIRFLOW_HOME") or STATE_DIR / "airflow")
    home.mkdir(parents=True, exist_ok=True)
    created = ensure_database(database)
    migrated = migrate(environment, database, home / "migrate.log")
    settings = ""
    if apply_settings:
        log_path = home / "settings.log"
        argv = [sys.executable, "-m", "dev.local_stack.airflow_settings"]
        _run(argv, environment, log_path, "applying airflow_settings.yaml")
        lines = log_path.read_text(errors="replace").strip().splitlines()
        settings = next((line for line in reversed(lines) if line.startswith("applied")), "")
    return SetupResult(database, sql_alchemy_conn(database), created, migrated, settings)


def _redacted(url: str) -> str:
    return url.replace(f":{PG_PASSWORD}@", ":***@")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["setup", "env", "url"])
    parser.add_argument("--database", default=DATABASE)
    args = parser.parse_args(argv)
    if args.command == "url":
        print(sql_alchemy_conn(args.database))
        return 0
    if args.command == "env":
        env = metadata_environment({}, args.database)
        for name in (CONN_VARIABLE, EXECUTOR_VARIABLE):
            print(f"export {name}={shlex.quote(env[name])}")
        return 0
    try:
        result = setup(database=args.database)
    except (MetadataError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # psycopg2.OperationalError: PostgreSQL is not up
        print(f"error: metadata database {args.database}: {exc}".rstrip(), file=sys.stderr)
        return 1
    state = ", ".join(
        [
            "created" if result.created else "exists",
            "migrated" if result.migrated else "already at head",
        ]
    )
    print(f"Airflow metadata DB {_redacted(result.url)} ({state}); {result.settings}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
