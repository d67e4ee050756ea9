"""Unit tests for sparkify.ddl: column lists read from the DDL, in order."""

from __future__ import annotations

import pytest

from sparkify.ddl import table_columns, tables


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
