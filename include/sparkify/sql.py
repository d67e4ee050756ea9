"""The SQL the operators run, built in one place: names, SQL files, load statements.

Queries live as ``.sql`` files in ``include/sql/``; this module reads them and wraps them
in the statements that load a table. Table and column names are validated identifiers,
quoted, never pasted input. Values travel as bind parameters (``%(name)s``).

Every statement here runs on PostgreSQL and on Amazon Redshift alike (Redshift's COPY and
the statements of its staging path are ``sparkify.redshift_sql``): ``DELETE ... USING``
instead of ``ON CONFLICT`` (Redshift has none), ``DELETE`` instead of ``TRUNCATE`` (on
Redshift ``TRUNCATE`` commits the open transaction, which would break atomicity).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path

SQL_DIR = Path(__file__).resolve().parents[1] / "sql"

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def identifier(name: str) -> str:
    """Validate ``name`` as a lower-case SQL identifier and return it double-quoted.

    Only ``[a-z_][a-z0-9_]*`` (at most 63 characters, PostgreSQL's limit) is accepted:
    anything else raises ``ValueError`` naming the offending value.
    """
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
        raise ValueError(
            f"{name!r} is not a valid SQL identifier: use lower-case letters, digits and _, "
            "starting with a letter or _, at most 63 characters"
        )
    return f'"{name}"'


def qualified(schema: str, table: str) -> str:
    """``"schema"."table"``, both parts validated."""
    return f"{identifier(schema)}.{identifier(table)}"


def column_list(columns: Sequence[str]) -> str:
    if not columns:
        raise ValueError("a load needs at least one column")
    return ", ".join(identifier(c) for c in columns)


@cache
def read_sql(name: str) -> str:
    """The text of ``include/sql/<name>.sql`` (``name`` is a plain file stem)."""
    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise ValueError(f"{name!r} is not the name of a SQL file in {SQL_DIR}")
    path = SQL_DIR / f"{name}.sql"
    if not path.exists():
        raise FileNotFoundError(f"no SQL file {path}")
    return path.read_text(encoding="utf-8").strip().rstrip(";")


def render_tables(query: str, tables: Mapping[str, tuple[str, str]]) -> str:
    """``query`` with each ``{{ name }}`` replaced by the table ``tables[name]`` names.

    ``tables`` maps a placeholder to ``(schema, table)``; both are validated and quoted.
    A placeholder with no table raises ``ValueError`` naming it (no silent empty name).
    """
    import jinja2

    names = {key: qualified(schema, table) for key, (schema, table) in tables.items()}
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
    try:
        return environment.from_string(query).render(names)
    except jinja2.UndefinedError as exc:
        raise ValueError(f"the query names a table it was not given: {exc}") from None


def count_rows(table: str) -> str:
    """How many rows ``table`` (a validated, qualified name) holds."""
    return f"SELECT COUNT(*) FROM {table}"  # noqa: S608 - validated identifier


def insert_select(table: str, columns: Sequence[str], select_sql: str) -> str:
    cols = column_list(columns)
    return f"INSERT INTO {table} ({cols}) SELECT {cols} FROM ({select_sql}) AS src"  # noqa: S608


def replace_interval(
    table: str, interval_column: str, columns: Sequence[str], select_sql: str
) -> list[str]:
    """Statements replacing the rows of one data interval: delete them, insert the query.

    Run in one transaction, a re-run of an interval neither duplicates nor loses rows.
    The interval is ``%(interval_start)s`` (inclusive) to ``%(interval_end)s`` (exclusive).
    """
    column = identifier(interval_column)
    delete = (
        f"DELETE FROM {table} "  # noqa: S608 - validated identifiers
        f"WHERE {column} >= %(interval_start)s AND {column} < %(interval_end)s"
    )
    return [delete, insert_select(table, columns, select_sql)]


def truncate_insert(table: str, columns: Sequence[str], select_sql: str) -> list[str]:
    """Statements replacing the whole table with the query's rows (atomic on both targets)."""
    return [f"DELETE FROM {table}", insert_select(table, columns, select_sql)]  # noqa: S608


def upsert(
    table: str,
    columns: Sequence[str],
    select_sql: str,
    key_columns: Sequence[str],
    staging_name: str,
    version_column: str | None = None,
) -> list[str]:
    """Statements merging the query's rows into ``table`` by ``key_columns``.

    An incoming row replaces the stored row with the same key. With ``version_column``,
    it does so only when it is at least as new: the stored row wins when it is newer, so
    loading intervals in any order converges to the latest version of each key.
    """
    if not key_columns:
        raise ValueError("an upsert needs key columns")
    unknown = set(key_columns) - set(columns)
    if version_column:
        unknown |= {version_column} - set(columns)
    if unknown:
        raise ValueError(f"upsert columns {sorted(unknown)} are not in the query's columns")
    staging = identifier(staging_name)

    # Redshift's DELETE takes no alias for its target: qualify with the table itself.
    def match(target: str) -> str:
        return " AND ".join(f"{target}.{identifier(k)} = i.{identifier(k)}" for k in key_columns)

    newer = ""
    if version_column:
        version = identifier(version_column)
        newer = f" AND {table}.{version} <= i.{version}"
    cols = column_list(columns)
    return [
        f"DROP TABLE IF EXISTS {staging}",
        f"CREATE TEMPORARY TABLE {staging} AS SELECT {cols} FROM ({select_sql}) AS src",  # noqa: S608
        f"DELETE FROM {table} USING {staging} AS i WHERE {match(table)}{newer}",  # noqa: S608
        f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {staging} AS i "  # noqa: S608
        f"WHERE NOT EXISTS (SELECT 1 FROM {table} AS t WHERE {match('t')})",
        f"DROP TABLE {staging}",
    ]


def clear_table(table: str, dialect: str) -> str:
    """Empty a staging table inside the load's transaction.

    PostgreSQL's ``TRUNCATE`` is transactional and fast; Redshift's commits the open
    transaction, so there a ``DELETE`` keeps the clear and the load atomic.
    """
    if dialect == "postgres":
        return f"TRUNCATE {table}"
    return f"DELETE FROM {table}"  # noqa: S608 - validated identifier


def delete_run_rejects(rejects_table: str) -> str:
    """Forget a run's earlier rejects for one table (bind: run_id, table_name)."""
    return (
        f"DELETE FROM {rejects_table} "  # noqa: S608 - validated identifier
        "WHERE run_id = %(run_id)s AND table_name = %(table_name)s"
    )


def delete_run_counts(counts_table: str) -> str:
    """Forget a run's play counts for one table (binds: ``table_name``, ``run_id``)."""
    return (
        f"DELETE FROM {counts_table} "  # noqa: S608 - validated identifier
        "WHERE table_name = %(table_name)s AND run_id = %(run_id)s"
    )


def delete_run_rows(table: str) -> str:
    """Drop a run-partitioned staging table's rows of ``%(run_id)s``."""
    return f"DELETE FROM {table} WHERE run_id = %(run_id)s"  # noqa: S608 - validated identifier


def delete_stale_runs(table: str) -> str:
    """Drop a run-partitioned staging table's rows staged before ``%(stale_before)s`` by
    other runs than ``%(run_id)s`` (and those of no run: staged before runs were kept apart)."""
    return (
        f"DELETE FROM {table} "  # noqa: S608 - validated identifier
        "WHERE run_id IS NULL OR (staged_at < %(stale_before)s AND run_id <> %(run_id)s)"
    )


def lock_tables(tables: Sequence[str], dialect: str) -> str:
    """Lock the validated, quoted ``tables`` for the rest of the transaction, in name order.

    Loads that write a shared table (a dimension, the manifest, the users history) take
    this as their first statement, so concurrent runs write it one after the other: no
    duplicate from two merges, and on Redshift no serializable-isolation abort. One
    order for every lock taker rules out deadlocks between them. PostgreSQL's EXCLUSIVE
    mode still lets readers (``SELECT``) through; Redshift's LOCK has no modes.
    """
    if not tables:
        raise ValueError("nothing to lock")
    names = ", ".join(sorted(set(tables)))
    if dialect == "postgres":
        return f"LOCK TABLE {names} IN EXCLUSIVE MODE"
    return f"LOCK {names}"


# One or two words (DOUBLE PRECISION), an optional size: no constraint, no default.
_COLUMN_TYPE = re.compile(r"^[A-Z]+( [A-Z]+)?(\([0-9]{1,5}(,[0-9]{1,3})?\))?$")


def add_column(table: str, column: str, type_sql: str) -> str:
    """``ALTER TABLE ... ADD COLUMN`` of a column the DDL declares (``type_sql`` as there)."""
    if not _COLUMN_TYPE.fullmatch(type_sql) or type_sql.split()[-1] in ("NULL", "KEY"):
        raise ValueError(f"{type_sql!r} is not a column type of the DDL")
    return f"ALTER TABLE {table} ADD COLUMN {identifier(column)} {type_sql}"


def insert_counts(counts_table: str) -> str:
    """One object's plays in one UTC hour (positional binds, for executemany)."""
    return (
        f"INSERT INTO {counts_table} "  # noqa: S608 - validated identifier
        "(table_name, source_key, hour_start, plays, run_id, counted_at) "
        "VALUES (%s, %s, %s, %s, %s, %s)"
    )


def insert_reject(rejects_table: str) -> str:
    """One set-aside record (positional binds, for executemany)."""
    return (
        f"INSERT INTO {rejects_table} "  # noqa: S608 - validated identifier
        "(run_id, table_name, source_key, line_number, reason, raw_line, rejected_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s)"
    )


# ---------------------------------------------------------------- incremental staging
# PostgreSQL path only (array parameters): Redshift stages the whole prefix in-cluster.


def manifest_select(manifest_table: str) -> str:
    return (
        f"SELECT source_key, etag FROM {manifest_table} "  # noqa: S608 - validated identifier
        "WHERE table_name = %(table_name)s"
    )


def manifest_forget(manifest_table: str, every_key: bool) -> str:
    """Forget a table's manifest entries: all, or those in ``%(keys)s`` (a list)."""
    statement = f"DELETE FROM {manifest_table} WHERE table_name = %(table_name)s"  # noqa: S608
    return statement if every_key else statement + " AND source_key = ANY(%(keys)s)"


def manifest_insert(manifest_table: str) -> str:
    return (
        f"INSERT INTO {manifest_table} "  # noqa: S608 - validated identifier
        "(table_name, source_key, etag, loaded_at) VALUES (%s, %s, %s, %s)"
    )


def delete_rows_of_objects(table: str) -> str:
    """Drop a staging table's rows that came from the objects in ``%(keys)s``."""
    return f"DELETE FROM {table} WHERE source_key = ANY(%(keys)s)"  # noqa: S608
