"""Unit tests for sparkify.sql: identifiers, SQL files, load statements."""

from __future__ import annotations

import pytest

from sparkify.sql import (
    SQL_DIR,
    add_column,
    clear_table,
    column_list,
    count_rows,
    delete_run_counts,
    delete_run_rejects,
    delete_run_rows,
    delete_stale_runs,
    identifier,
    insert_reject,
    lock_tables,
    qualified,
    read_sql,
    render_tables,
    replace_interval,
    truncate_insert,
    upsert,
)

TABLE = '"public"."staging_events"'

# ----------------------------------------------------------------------------- identifiers


@pytest.mark.parametrize(
    ("name", "quoted"),
    [
        ("users", '"users"'),
        ("_private", '"_private"'),
        ("staging_events2", '"staging_events2"'),
        ("a" * 63, '"' + "a" * 63 + '"'),
    ],
)
def test_identifier_accepts_lower_case_names(name, quoted):
    assert identifier(name) == quoted


@pytest.mark.parametrize(
    "name",
    [
        "users; drop table x",
        'users"; DROP TABLE x; --',
        "users'",
        '"users"',
        "Users",
        "USERS",
        "",
        "a" * 64,
        "1users",
        "user-id",
        "user id",
        "public.users",
        "usérs",
        None,
        42,
    ],
)
def test_identifier_rejects_everything_else(name):
    with pytest.raises(ValueError, match="is not a valid SQL identifier"):
        identifier(name)


def test_identifier_error_names_the_value():
    with pytest.raises(ValueError) as info:
        identifier("users; drop table x")
    assert "'users; drop table x'" in str(info.value)


def test_identifier_rejects_trailing_newline():
    with pytest.raises(ValueError):
        identifier("users\n")


def test_qualified_quotes_both_parts():
    assert qualified("public", "songplays") == '"public"."songplays"'


@pytest.mark.parametrize(("schema", "table"), [("Public", "users"), ("public", "x; drop")])
def test_qualified_validates_both_parts(schema, table):
    with pytest.raises(ValueError):
        qualified(schema, table)


def test_column_list_quotes_and_joins_and_refuses_empty():
    assert column_list(["a", "b_c"]) == '"a", "b_c"'
    with pytest.raises(ValueError, match="at least one column"):
        column_list([])


def test_render_tables_puts_validated_quoted_names_in_place():
    query = "SELECT * FROM {{ staging_events }} e JOIN {{staging_songs}} s ON TRUE"
    rendered = render_tables(
        query, {"staging_events": ("public", "staging_events"), "staging_songs": ("x", "songs")}
    )
    assert rendered == 'SELECT * FROM "public"."staging_events" e JOIN "x"."songs" s ON TRUE'


def test_render_tables_refuses_a_missing_table_and_a_bad_name():
    with pytest.raises(ValueError, match="names a table it was not given: 'songplays'"):
        render_tables("SELECT * FROM {{ songplays }}", {})
    with pytest.raises(ValueError, match="not a valid SQL identifier"):
        render_tables("SELECT * FROM {{ t }}", {"t": ("public", "t; DROP TABLE users")})


def test_render_tables_keeps_bind_parameters():
    query = "SELECT 1 FROM {{ t }} WHERE ts >= %(interval_start_ms)s"
    assert render_tables(query, {"t": ("public", "t")}) == (
        'SELECT 1 FROM "public"."t" WHERE ts >= %(interval_start_ms)s'
    )


def test_count_rows():
    assert count_rows('"public"."users"') == 'SELECT COUNT(*) FROM "public"."users"'


# ----------------------------------------------------------------------------- SQL files


@pytest.mark.parametrize("name", ["songplays", "users", "songs", "artists", "time"])
def test_read_sql_returns_the_file_without_trailing_semicolon(name):
    text = read_sql(name)
    raw = (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")
    assert text == raw.strip().rstrip(";")
    assert "SELECT" in text
    assert not text.endswith(";")


def test_read_sql_create_tables_declares_every_table():
    text = read_sql("create_tables")
    for table in ("staging_events", "staging_songs", "songplays", "users", "songs", "artists"):
        assert f"CREATE TABLE IF NOT EXISTS {table} (" in text
    assert 'CREATE TABLE IF NOT EXISTS "time" (' in text  # TIME is reserved on Redshift


@pytest.mark.parametrize(
    "name",
    ["../pyproject", "../../etc/passwd", "users.sql", "sub/users", "/etc/passwd", "Users", ""],
)
def test_read_sql_refuses_names_that_are_not_plain_stems(name):
    with pytest.raises(ValueError, match="is not the name of a SQL file"):
        read_sql(name)


def test_read_sql_missing_file():
    with pytest.raises(FileNotFoundError, match="no_such_query"):
        read_sql("no_such_query")


# ----------------------------------------------------------------------------- load statements


def test_replace_interval_statements():
    assert replace_interval(
        '"public"."songplays"', "start_time", ["songplay_id", "start_time"], "SELECT 1"
    ) == [
        'DELETE FROM "public"."songplays" '
        'WHERE "start_time" >= %(interval_start)s AND "start_time" < %(interval_end)s',
        'INSERT INTO "public"."songplays" ("songplay_id", "start_time") '
        'SELECT "songplay_id", "start_time" FROM (SELECT 1) AS src',
    ]


def test_replace_interval_validates_column_names():
    with pytest.raises(ValueError):
        replace_interval('"public"."t"', "start time", ["a"], "SELECT 1")
    with pytest.raises(ValueError):
        replace_interval('"public"."t"', "start_time", ["a; drop table t"], "SELECT 1")


def test_truncate_insert_statements():
    assert truncate_insert('"public"."songs"', ["song_id", "title"], "SELECT x") == [
        'DELETE FROM "public"."songs"',
        'INSERT INTO "public"."songs" ("song_id", "title") '
        'SELECT "song_id", "title" FROM (SELECT x) AS src',
    ]


def test_upsert_without_version_column():
    assert upsert(
        '"public"."time"',
        ["start_time", "hour"],
        "SELECT q",
        key_columns=["start_time"],
        staging_name="incoming_time",
    ) == [
        'DROP TABLE IF EXISTS "incoming_time"',
        'CREATE TEMPORARY TABLE "incoming_time" AS SELECT "start_time", "hour" '
        "FROM (SELECT q) AS src",
        'DELETE FROM "public"."time" USING "incoming_time" AS i '
        'WHERE "public"."time"."start_time" = i."start_time"',
        'INSERT INTO "public"."time" ("start_time", "hour") SELECT "start_time", "hour" '
        'FROM "incoming_time" AS i WHERE NOT EXISTS '
        '(SELECT 1 FROM "public"."time" AS t WHERE t."start_time" = i."start_time")',
        'DROP TABLE "incoming_time"',
    ]


def test_upsert_with_version_column_and_composite_key():
    statements = upsert(
        '"public"."users"',
        ["user_id", "level", "last_play_at"],
        "SELECT q",
        key_columns=["user_id", "level"],
        staging_name="incoming_users",
        version_column="last_play_at",
    )
    assert statements[2] == (
        'DELETE FROM "public"."users" USING "incoming_users" AS i '
        'WHERE "public"."users"."user_id" = i."user_id" '
        'AND "public"."users"."level" = i."level" '
        'AND "public"."users"."last_play_at" <= i."last_play_at"'
    )
    assert statements[3] == (
        'INSERT INTO "public"."users" ("user_id", "level", "last_play_at") '
        'SELECT "user_id", "level", "last_play_at" FROM "incoming_users" AS i '
        'WHERE NOT EXISTS (SELECT 1 FROM "public"."users" AS t '
        'WHERE t."user_id" = i."user_id" AND t."level" = i."level")'
    )
    assert len(statements) == 5


def test_upsert_requires_key_columns():
    with pytest.raises(ValueError, match="needs key columns"):
        upsert('"public"."t"', ["a"], "SELECT 1", key_columns=[], staging_name="s")


def test_upsert_refuses_keys_not_in_columns():
    with pytest.raises(ValueError, match=r"\['user_id'\] are not in the query's columns"):
        upsert('"public"."t"', ["a"], "SELECT 1", key_columns=["user_id"], staging_name="s")


def test_upsert_refuses_version_not_in_columns():
    with pytest.raises(ValueError, match=r"\['version'\] are not in the query's columns"):
        upsert(
            '"public"."t"', ["a"], "SELECT 1", key_columns=["a"], staging_name="s",
            version_column="version",
        )  # fmt: skip


def test_upsert_validates_staging_name():
    with pytest.raises(ValueError, match="not a valid SQL identifier"):
        upsert('"public"."t"', ["a"], "SELECT 1", key_columns=["a"], staging_name="x; drop")


@pytest.mark.parametrize(
    ("dialect", "statement"),
    [("postgres", f"TRUNCATE {TABLE}"), ("redshift", f"DELETE FROM {TABLE}")],
)
def test_clear_table_per_dialect(dialect, statement):
    assert clear_table(TABLE, dialect) == statement


def test_rejects_statements():
    table = '"public"."staging_rejects"'
    assert delete_run_rejects(table) == (
        'DELETE FROM "public"."staging_rejects" '
        "WHERE run_id = %(run_id)s AND table_name = %(table_name)s"
    )
    assert insert_reject(table) == (
        'INSERT INTO "public"."staging_rejects" '
        "(run_id, table_name, source_key, line_number, reason, raw_line, rejected_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s)"
    )


# ----------------------------------------------------------------------------- concurrent runs

USERS, HISTORY = '"public"."users"', '"public"."users_history"'
MANIFEST, SONGS = '"public"."staging_manifest"', '"public"."staging_songs"'


@pytest.mark.parametrize(
    ("dialect", "statement"),
    [
        ("postgres", f"LOCK TABLE {MANIFEST}, {SONGS} IN EXCLUSIVE MODE"),
        ("redshift", f"LOCK {MANIFEST}, {SONGS}"),  # Redshift's LOCK has no modes
    ],
)
def test_lock_tables_in_name_order_per_dialect(dialect, statement):
    # One order for every lock taker, whatever order a load names its tables in: no
    # deadlock between two loads locking overlapping tables.
    assert lock_tables([SONGS, MANIFEST], dialect) == statement
    assert lock_tables([MANIFEST, SONGS], dialect) == statement


def test_lock_tables_names_each_table_once():
    assert lock_tables([HISTORY, USERS, HISTORY], "postgres") == (
        f"LOCK TABLE {USERS}, {HISTORY} IN EXCLUSIVE MODE"
    )
    assert lock_tables((USERS, USERS), "redshift") == f"LOCK {USERS}"


def test_lock_tables_refuses_nothing_to_lock():
    for dialect in ("postgres", "redshift"):
        with pytest.raises(ValueError, match="nothing to lock"):
            lock_tables([], dialect)


@pytest.mark.parametrize(
    ("type_sql", "statement"),
    [
        ("VARCHAR(256)", f'ALTER TABLE {TABLE} ADD COLUMN "run_id" VARCHAR(256)'),
        ("TIMESTAMP", f'ALTER TABLE {TABLE} ADD COLUMN "run_id" TIMESTAMP'),
        ("DOUBLE PRECISION", f'ALTER TABLE {TABLE} ADD COLUMN "run_id" DOUBLE PRECISION'),
        ("DECIMAL(10,2)", f'ALTER TABLE {TABLE} ADD COLUMN "run_id" DECIMAL(10,2)'),
    ],
)
def test_add_column_of_a_ddl_type(type_sql, statement):
    assert add_column(TABLE, "run_id", type_sql) == statement


@pytest.mark.parametrize(
    "type_sql",
    [
        "varchar(256)",  # the DDL's types are upper case
        "VARCHAR(256) DEFAULT 'x'",
        "VARCHAR(256); DROP TABLE users",
        "VARCHAR(123456)",
        "TIMESTAMP NOT NULL",  # a constraint: the DDL's own column definition only
        "",
        "VARCHAR(256)\n",
    ],
)
def test_add_column_refuses_what_is_not_a_ddl_type(type_sql):
    with pytest.raises(ValueError, match="is not a column type of the DDL"):
        add_column(TABLE, "run_id", type_sql)


def test_add_column_validates_the_column_name():
    with pytest.raises(ValueError, match="not a valid SQL identifier"):
        add_column(TABLE, "run_id; DROP TABLE users", "TIMESTAMP")


def test_run_partitioned_staging_statements():
    assert delete_run_rows(TABLE) == f"DELETE FROM {TABLE} WHERE run_id = %(run_id)s"
    assert delete_stale_runs(TABLE) == (
        f"DELETE FROM {TABLE} "
        "WHERE run_id IS NULL OR (staged_at < %(stale_before)s AND run_id <> %(run_id)s)"
    )


def test_counts_are_deleted_per_run_and_table():
    assert delete_run_counts('"public"."staging_counts"') == (
        'DELETE FROM "public"."staging_counts" '
        "WHERE table_name = %(table_name)s AND run_id = %(run_id)s"
    )
