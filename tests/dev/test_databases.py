"""drop_database against the real PostgreSQL: sessions inside do not stop it."""

from __future__ import annotations

import psycopg2
import pytest

from dev.local_stack.databases import drop_database
from tests.stack_support import dsn

pytestmark = pytest.mark.stack

NAME = "sparkify_test_drop_me"


def exists(cursor) -> bool:
    cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (NAME,))
    return cursor.fetchone() is not None


class ForceRefused:
    """A cursor whose ``WITH (FORCE)`` fails as it does with an autovacuum worker inside."""

    def __init__(self, cursor) -> None:
        self.cursor = cursor

    def execute(self, statement: str, params=None) -> None:
        if "WITH (FORCE)" in statement:
            raise psycopg2.errors.InsufficientPrivilege("must be a member of the role ...")
        self.cursor.execute(statement, params)


@pytest.fixture
def admin():
    conn = psycopg2.connect(dsn("sparkify"))
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{NAME}"')
        yield cursor
        cursor.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
    conn.close()


@pytest.mark.parametrize("refusing", [False, True], ids=["force", "force-refused"])
def test_a_database_with_a_session_inside_is_dropped(admin, refusing):
    inside = psycopg2.connect(dsn(NAME))  # still open: a plain DROP would fail
    try:
        drop_database(ForceRefused(admin) if refusing else admin, f'"{NAME}"', NAME)
        assert not exists(admin)
        with pytest.raises(psycopg2.OperationalError):  # our own session was ended
            inside.cursor().execute("SELECT 1")
    finally:
        inside.close()


def test_a_missing_database_is_no_error(admin):
    drop_database(admin, f'"{NAME}"', NAME)
    drop_database(admin, f'"{NAME}"', NAME)
    assert not exists(admin)
