"""Dropping a throwaway database of the local PostgreSQL, whoever is still in it."""

from __future__ import annotations

from typing import Any


def drop_database(cursor: Any, quoted_name: str, name: str) -> None:
    """``DROP DATABASE IF EXISTS`` that also works while an autovacuum worker is inside.

    ``WITH (FORCE)`` ends the other sessions, but only when it may end all of them: an
    autovacuum worker (the superuser's, not ours to end: after a big DELETE or TRUNCATE
    one often is) makes it fail. Then our own sessions are ended, and a plain DROP asks
    autovacuum to leave.

    :param cursor: an autocommit psycopg2 cursor on another database, as the owner.
    :param quoted_name: the database's validated, quoted name.
    :param name: the same name unquoted (to find its sessions).
    """
    import psycopg2

    try:
        cursor.execute(f"DROP DATABASE IF EXISTS {quoted_name} WITH (FORCE)")
    except psycopg2.errors.InsufficientPrivilege:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND usename = current_user AND pid <> pg_backend_pid()",
            (name,),
        )
        cursor.execute(f"DROP DATABASE IF EXISTS {quoted_name}")
