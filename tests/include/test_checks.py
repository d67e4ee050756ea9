"""Unit tests for sparkify.checks: the default data quality suite."""

from __future__ import annotations

import re
from collections import Counter

import jinja2
import jinja2.meta

from sparkify.checks import CUSTOM_CHECKS, STAR_TABLES, custom_check_sql, default_checks
from sparkify.quality import KINDS, compile_checks
from sparkify.sql import read_sql

CUSTOM = {name: file for file, (name, _, _) in CUSTOM_CHECKS.items()}


def compiled(name: str, schema: str = "public"):
    (check,) = [c for c in compile_checks(default_checks(schema)) if c.name == name]
    return check


def test_default_checks_compile():
    compiled_checks = compile_checks(default_checks())
    assert len(compiled_checks) == len(default_checks()) >= 20


def test_check_names_are_unique():
    names = Counter(c["name"] for c in default_checks())
    assert [name for name, count in names.items() if count > 1] == []


def test_every_star_table_has_a_row_count_check_of_the_interval_where_it_has_one():
    row_counts = {c["table"]: c for c in default_checks() if c.get("kind") == "row_count_min"}
    assert set(row_counts) == set(STAR_TABLES) == {"songplays", "users", "songs", "artists", "time"}
    assert all(c["min"] >= 1 for c in row_counts.values())
    scoped = {table for table, c in row_counts.items() if c.get("interval_column")}
    assert scoped == {"songplays", "time"}
    assert row_counts["songplays"]["interval_column"] == row_counts["time"]["interval_column"]
    assert compiled("songplays_has_rows").sql == (
        'SELECT COUNT(*) FROM "public"."songplays" '
        'WHERE "start_time" >= %(interval_start)s AND "start_time" < %(interval_end)s'
    )


def test_every_star_table_key_is_checked_not_null_and_unique():
    checks = default_checks()
    for kind in ("not_null", "unique"):
        assert {c["table"] for c in checks if c.get("kind") == kind} >= set(STAR_TABLES)


def test_checks_only_name_tables_that_create_tables_declares_or_staging_writes():
    ddl = read_sql("create_tables")
    declared = set(re.findall(r'CREATE TABLE IF NOT EXISTS "?(\w+)"? \(', ddl))
    assert {"songplays", "users", "songs", "artists", "time", "staging_events"} <= declared
    for check in default_checks():
        assert check["table"] in declared
        if check.get("kind") == "foreign_key":
            assert check["references"].split(".")[0] in declared
    custom_sql = " ".join(c.get("sql", "") for c in default_checks())
    named = set(re.findall(r'"public"\."(\w+)"', custom_sql))
    # staging_counts is the staging load's table (declared by its change to the DDL)
    assert named - declared <= {"staging_counts"}


def test_every_check_is_a_known_kind_or_custom_sql():
    for check in default_checks():
        assert check.get("kind") in KINDS or "sql" in check, check["name"]


def test_the_old_reconciliation_is_gone():
    names = {c["name"] for c in default_checks()}
    assert "songplays_reconcile_with_staging" not in names
    assert all("DISTINCT userid" not in c.get("sql", "") for c in default_checks())


def test_custom_checks_are_the_sql_files_with_quoted_tables_in_the_schema():
    assert set(CUSTOM) == {
        "songplays_match_staged_plays", "staged_plays_within_log_days",
        "time_matches_songplays", "users_level_of_latest_play",
    }  # fmt: skip
    for name, file in CUSTOM.items():
        check = compiled(name, "analytics")
        assert check.sql == custom_check_sql(file, "analytics")
        assert "{{" not in check.sql and '"public"' not in check.sql
        # nothing but table placeholders in the files: no value is pasted into SQL
        names = jinja2.meta.find_undeclared_variables(jinja2.Environment().parse(read_sql(file)))
        assert names <= {"songplays", "staging_counts", "staging_events", "time", "users"}


def test_staged_plays_check_compares_with_staging_counts_of_this_run():
    check = compiled("songplays_match_staged_plays")
    assert (check.table, check.comparison, check.expected_in_query) == ("songplays", "==", True)
    assert '"public"."staging_counts"' in check.sql and "run_id = %(run_id)s" in check.sql
    assert "hour_start >= %(interval_start)s AND hour_start < %(interval_end)s" in check.sql
    # not the fact query's own filter and key
    assert '"public"."staging_events"' not in check.sql and "NextSong" not in check.sql
    assert check.judge((412, 412)) == (True, "412", "== 412")
    assert check.judge((0, 412)) == (False, "0", "== 412")


def test_out_of_day_check_bounds_by_the_days_of_the_log_files():
    check = compiled("staged_plays_within_log_days")
    assert check.table == "staging_events" and (check.comparison, check.expected) == ("==", 0)
    assert "ts < %(days_start_ms)s OR ts >= %(days_end_ms)s" in check.sql
    assert check.judge((3,)) == (False, "3", "== 0")


def test_time_and_users_checks_look_at_the_interval():
    time = compiled("time_matches_songplays")
    assert time.expected_in_query and time.table == "time"
    users = compiled("users_level_of_latest_play")
    assert (users.table, users.expected) == ("users", 0)
    for check in (time, users):
        assert "%(interval_start)s" in check.sql and "%(interval_end)s" in check.sql


def test_interval_scoped_kinds_use_start_time():
    scoped = [
        c for c in compile_checks(default_checks())
        if "%(interval_start)s" in c.sql and c.name not in CUSTOM
    ]  # fmt: skip
    assert {c.table for c in scoped} == {"songplays", "time"}
    fk = [c for c in scoped if c.name.startswith("songplays_") and "_in_" in c.name]
    assert len(fk) == 4
