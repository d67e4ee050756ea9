"""Airflow's metadata DB on the local PostgreSQL (dev/local_stack/airflow_metadata.py).

The environment rules need no server. The setup is checked for real on a throwaway
database (never ``airflow_meta``): created once, migrated once, at Airflow's head, the
settings applied; a second setup changes nothing.
"""

from __future__ import annotations

import os
import uuid
from contextlib import closing

import psycopg2
import pytest

from dev.local_stack import airflow_metadata as metadata
from dev.local_stack.stack import HOST, PG_PASSWORD, PG_PORT, PG_USER


def test_the_url_names_the_local_postgresql_and_the_database():
    url = metadata.sql_alchemy_conn("airflow_meta")
    assert url == f"postgresql+psycopg2://{PG_USER}:{PG_PASSWORD}@{HOST}:{PG_PORT}/airflow_meta"
    assert metadata.is_postgres(url)
    assert metadata.is_postgres("postgresql://u:p@h/db")
    assert not metadata.is_postgres("sqlite:////tmp/airflow.db")
    assert not metadata.is_postgres(None)


def test_the_environment_adds_postgresql_and_the_local_executor():
    env = metadata.metadata_environment({"PATH": "/bin"})
    assert env[metadata.CONN_VARIABLE] == metadata.sql_alchemy_conn(metadata.DATABASE)
    assert env[metadata.EXECUTOR_VARIABLE] == "LocalExecutor"
    assert env["PATH"] == "/bin"


def test_the_environment_keeps_a_database_and_executor_already_chosen():
    given = {
        metadata.CONN_VARIABLE: "sqlite:////tmp/private/airflow.db",
        metadata.EXECUTOR_VARIABLE: "SequentialExecutor",
    }
    assert metadata.metadata_environment(given) == given
    # SQLite without an executor: Airflow's default, never the LocalExecutor it refuses.
    sqlite = {metadata.CONN_VARIABLE: "sqlite:////tmp/private/airflow.db"}
    assert metadata.EXECUTOR_VARIABLE not in metadata.metadata_environment(sqlite)


def test_database_names_are_plain_and_the_shared_one_is_never_dropped():
    with pytest.raises(ValueError, match="plain database name"):
        metadata.ensure_database('x"; DROP DATABASE sparkify; --')
    with pytest.raises(ValueError, match="refusing"):
        metadata.drop_database(metadata.DATABASE)


def test_the_env_command_prints_shell_exports(capsys):
    assert metadata.main(["env", "--database", "airflow_meta"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"export {metadata.CONN_VARIABLE}={metadata.sql_alchemy_conn()}"
    assert out[1] == f"export {metadata.EXECUTOR_VARIABLE}=LocalExecutor"


@pytest.fixture
def throwaway_database():
    name = f"airflow_meta_pytest_{uuid.uuid4().hex[:8]}"
    yield name
    metadata.drop_database(name)


@pytest.mark.stack
def test_setup_creates_and_migrates_once_then_changes_nothing(throwaway_database, tmp_path):
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path)}
    first = metadata.setup(env, throwaway_database)
    assert (first.created, first.migrated) == (True, True)
    assert first.settings.startswith("applied airflow_settings.yaml")
    assert metadata.current_revisions(throwaway_database) == metadata.head_revisions()
    assert (tmp_path / "migrate.log").exists()

    dsn = f"postgresql://{PG_USER}:{PG_PASSWORD}@{HOST}:{PG_PORT}/{throwaway_database}"
    # closing(): psycopg2's own context manager ends the transaction, not the connection.
    with closing(psycopg2.connect(dsn)) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT datdba::regrole::text FROM pg_database WHERE datname = %s",
                       (throwaway_database,))  # fmt: skip
        assert cursor.fetchone() == (PG_USER,)
        cursor.execute("SELECT conn_id FROM connection ORDER BY conn_id")
        assert {row[0] for row in cursor} >= {"redshift", "aws-redshift"}
    (tmp_path / "migrate.log").unlink()

    second = metadata.setup(env, throwaway_database)
    assert (second.created, second.migrated) == (False, False)
    assert not (tmp_path / "migrate.log").exists()  # no migration ran
    assert metadata.ensure_database(throwaway_database) is False

    # A copy of the migrated database is migrated too, with the settings, in one statement.
    copy = f"{throwaway_database}_copy"
    try:
        metadata.clone_database(throwaway_database, copy)
        assert metadata.current_revisions(copy) == metadata.head_revisions()
        copy_dsn = dsn.rsplit("/", 1)[0] + f"/{copy}"
        with closing(psycopg2.connect(copy_dsn)) as conn, conn.cursor() as cursor:
            cursor.execute("SELECT conn_id FROM connection ORDER BY conn_id")
            assert {row[0] for row in cursor} >= {"redshift", "aws-redshift"}
        metadata.clone_database(throwaway_database, copy)  # replaced, not refused
    finally:
        metadata.drop_database(copy)


def test_the_shared_database_is_never_replaced_by_a_copy():
    with pytest.raises(ValueError, match="refusing"):
        metadata.clone_database("bench_airflow_meta_template", metadata.DATABASE)
