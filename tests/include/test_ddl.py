"""Unit tests for sparkify.ddl: column lists and declared types read from the DDL, in order."""

from __future__ import annotations

import pytest

from sparkify.ddl import column_types, declarations, table_columns, tables
from sparkify.sql import add_column


def test_every_table_of_the_ddl_is_found():
    assert sorted(tables()) == sorted([
        "staging_events", "staging_songs", "staging_manifest", "staging_counts", "songplays",
        "users", "songs", "artists", "time", "staging_rejects", "data_quality_results",
        "users_history",
    ])  # fmt: skip


def test_columns_in_ddl_order_without_constraints_or_comments():
    assert table_columns("songplays") == [
        "songplay_id", "start_time", "user_id", "level", "song_id", "artist_id",
        "session_id", "location", "user_agent",
    ]  # fmt: skip
    # PRIMARY KEY (table_name, source_key) is a constraint, not a column
    assert table_columns("staging_manifest") == ["table_name", "source_key", "etag", "loaded_at"]
    # the quoted name of "time" (reserved on Redshift)
    assert table_columns("time") == [
        "start_time",
        "hour",
        "day",
        "week",
        "month",
        "year",
        "weekday",
    ]


def test_unknown_table_names_the_ddl():
    with pytest.raises(KeyError, match=r"'nope' is not declared in include/sql/create_tables.sql"):
        table_columns("nope")


def test_column_types_are_the_declared_types_in_ddl_order():
    types = column_types("staging_events")
    assert list(types) == table_columns("staging_events")
    # NOT NULL and comments are not part of the type; the run's columns come last
    named = ("ts", "length", "source_key", "run_id", "staged_at")
    assert {name: types[name] for name in named} == {
        "ts": "BIGINT", "length": "DOUBLE PRECISION", "source_key": "VARCHAR(1024)",
        "run_id": "VARCHAR(256)", "staged_at": "TIMESTAMP",
    }  # fmt: skip
    assert list(types)[-3:] == ["source_key", "run_id", "staged_at"]
    # an inline PRIMARY KEY is not part of the type either
    assert column_types("songplays")["songplay_id"] == "VARCHAR(32)"
    assert column_types("time")["hour"] == "SMALLINT"


def test_column_types_is_a_copy_the_caller_may_change():
    column_types("staging_events").pop("run_id")
    assert "run_id" in column_types("staging_events")


def test_every_declared_type_is_one_add_column_accepts():
    """A column the DDL declares and an old table lacks is added with its declared type."""
    for table, columns in declarations().items():
        for name, type_sql in columns.items():
            assert add_column(f'"public"."{table}"', name, type_sql).endswith(type_sql)


def test_column_types_of_an_unknown_table_names_the_ddl():
    with pytest.raises(KeyError, match=r"'nope' is not declared in include/sql/create_tables"):
        column_types("nope")


def test_a_column_type_ends_before_its_constraints():
    # "start_time TIMESTAMP NOT NULL PRIMARY KEY": ALTER TABLE ... ADD COLUMN takes the
    # type alone (an added column cannot be NOT NULL on a table that has rows).
    assert column_types("time")["start_time"] == "TIMESTAMP"
    assert column_types("users")["user_id"] == "INTEGER"
    assert column_types("staging_events")["ts"] == "BIGINT"
