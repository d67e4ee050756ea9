"""The default data quality suite of ``sparkify_etl``: every table, declared as data."""

from __future__ import annotations

from typing import Any

from sparkify.sql import read_sql, render_tables

STAR_TABLES = ("songplays", "users", "songs", "artists", "time")
# Tables of the interval: their row count is checked for the run's interval, not overall.
INTERVAL_TABLES = ("songplays", "time")

# Custom checks: include/sql/<file>.sql -> (check name, checked table, expected value),
# compared with ==. Expected None: the query returns observed and expected (the number
# only the warehouse knows). The files' {{ table }} placeholders take validated, quoted
# names (sparkify.sql.render_tables).
CUSTOM_CHECKS = {
    "check_songplays_staged_plays": ("songplays_match_staged_plays", "songplays", None),
    "check_staged_plays_within_days": ("staged_plays_within_log_days", "staging_events", 0),
    "check_time_matches_songplays": ("time_matches_songplays", "time", None),
    "check_users_latest_play": ("users_level_of_latest_play", "users", 0),
}
_PLACEHOLDERS = ("songplays", "staging_counts", "staging_events", "time", "users")


def custom_check_sql(file: str, schema: str = "public") -> str:
    """The query of ``include/sql/<file>.sql`` with its tables in ``schema``.

    :param file: stem of the SQL file (a key of ``CUSTOM_CHECKS``).
    :param schema: schema of the tables it names.
    """
    return render_tables(read_sql(file), {name: (schema, name) for name in _PLACEHOLDERS})


def custom_checks(schema: str = "public") -> list[dict[str, Any]]:
    """The checks of ``CUSTOM_CHECKS``, as check dicts.

    :param schema: schema of the tables they name.
    """
    checks = []
    for file, (name, table, expected) in CUSTOM_CHECKS.items():
        check = {"name": name, "table": table, "sql": custom_check_sql(file, schema)}
        check |= {"expected_in_query": True} if expected is None else {"expected": expected}
        checks.append({**check, "comparison": "=="})
    return checks


def default_checks(schema: str = "public") -> list[dict[str, Any]]:
    """Rows in every table (in the interval for songplays and time), keys present and
    unique, references resolved, values sane, and the custom checks: the interval's plays
    equal what staging counted, no staged play outside its file's days, time and users
    agree with songplays.

    :param schema: schema of the checked tables.
    """
    checks: list[dict[str, Any]] = []
    for table in STAR_TABLES:
        check = {"name": f"{table}_has_rows", "table": table, "kind": "row_count_min", "min": 1}
        if table in INTERVAL_TABLES:
            check["interval_column"] = "start_time"
        checks.append(check)
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
    ]  # fmt: skip
    return checks + custom_checks(schema)
