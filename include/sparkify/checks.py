"""The default data quality suite of ``sparkify_etl``: every table, declared as data."""

from __future__ import annotations

from typing import Any

from sparkify.sql import qualified, read_sql

STAR_TABLES = ("songplays", "users", "songs", "artists", "time")

# include/sql/check_songplays_reconcile.sql: 0 when the interval's songplays equal its
# distinct NextSong events in staging. Its {songplays} and {staging_events} placeholders
# take validated, quoted names (str.format with sparkify.sql.qualified), never input.
RECONCILIATION_SQL = read_sql("check_songplays_reconcile")


def default_checks(schema: str = "public") -> list[dict[str, Any]]:
    """Rows in every table, keys present and unique, references resolved, values sane."""
    reconciliation = RECONCILIATION_SQL.format(
        songplays=qualified(schema, "songplays"),
        staging_events=qualified(schema, "staging_events"),
    )
    checks: list[dict[str, Any]] = [
        {"name": f"{table}_has_rows", "table": table, "kind": "row_count_min", "min": 1}
        for table in STAR_TABLES
    ]
    keys = {
        "songplays": "songplay_id",
        "users": "user_id",
        "songs": "song_id",
        "artists": "artist_id",
        "time": "start_time",
    }
    for table, key in keys.items():
        checks += [
            {"name": f"{table}_key_not_null", "table": table, "kind": "not_null", "columns": [key]},
            {"name": f"{table}_key_unique", "table": table, "kind": "unique", "columns": [key]},
        ]
    references = {
        "user_id": "users.user_id",
        "start_time": "time.start_time",
        "song_id": "songs.song_id",
        "artist_id": "artists.artist_id",
    }
    for column, reference in references.items():
        checks.append(
            {
                "name": f"songplays_{column}_in_{reference.split('.')[0]}",
                "table": "songplays",
                "kind": "foreign_key",
                "column": column,
                "references": reference,
                "interval_column": "start_time",
            }
        )
    checks += [
        {"name": "songplays_user_id_not_null", "table": "songplays", "kind": "not_null",
         "columns": ["user_id", "start_time"], "interval_column": "start_time"},
        {"name": "songplays_level_accepted", "table": "songplays", "kind": "accepted_values",
         "column": "level", "values": ["free", "paid"], "interval_column": "start_time"},
        {"name": "users_level_accepted", "table": "users", "kind": "accepted_values",
         "column": "level", "values": ["free", "paid"]},
        {"name": "time_hour_in_range", "table": "time", "kind": "value_range",
         "column": "hour", "min": 0, "max": 23},
        {"name": "time_weekday_in_range", "table": "time", "kind": "value_range",
         "column": "weekday", "min": 0, "max": 6},
        {"name": "time_month_in_range", "table": "time", "kind": "value_range",
         "column": "month", "min": 1, "max": 12},
        {"name": "songs_duration_positive", "table": "songs", "kind": "value_range",
         "column": "duration", "min": 0},
        {"name": "songplays_reconcile_with_staging", "table": "songplays",
         "sql": reconciliation, "expected": 0, "comparison": "=="},
    ]  # fmt: skip
    return checks
