"""Unit tests for sparkify.checks: the default data quality suite."""

from __future__ import annotations

import re
import string
from collections import Counter

from sparkify.checks import RECONCILIATION_SQL, STAR_TABLES, default_checks
from sparkify.quality import KINDS, compile_checks
from sparkify.sql import read_sql


def test_default_checks_compile():
    compiled = compile_checks(default_checks())
    assert len(compiled) == len(default_checks()) >= 20


def test_check_names_are_unique():
    names = Counter(c["name"] for c in default_checks())
    assert [name for name, count in names.items() if count > 1] == []


def test_every_star_table_has_a_row_count_check():
    row_counts = {c["table"]: c for c in default_checks() if c.get("kind") == "row_count_min"}
    assert set(row_counts) == set(STAR_TABLES) == {"songplays", "users", "songs", "artists", "time"}
    assert all(c["min"] >= 1 for c in row_counts.values())


def test_every_star_table_key_is_checked_not_null_and_unique():
    checks = default_checks()
    for kind in ("not_null", "unique"):
        assert {c["table"] for c in checks if c.get("kind") == kind} >= set(STAR_TABLES)


def test_checks_only_name_tables_that_create_tables_declares():
    ddl = read_sql("create_tables")
    declared = set(re.findall(r'CREATE TABLE IF NOT EXISTS "?(\w+)"? \(', ddl))
    assert {"songplays", "users", "songs", "artists", "time"} <= declared
    for check in default_checks():
        assert check["table"] in declared
        if check.get("kind") == "foreign_key":
            assert check["references"].split(".")[0] in declared


def test_every_check_is_a_known_kind_or_custom_sql():
    for check in default_checks():
        assert check.get("kind") in KINDS or "sql" in check, check["name"]


def test_reconciliation_check_is_included():
    (check,) = [
        c for c in compile_checks(default_checks()) if c.name == "songplays_reconcile_with_staging"
    ]
    assert check.table == "songplays"
    assert (check.comparison, check.expected) == ("==", 0)
    assert (
        check.sql
        == RECONCILIATION_SQL.format(
            songplays='"public"."songplays"', staging_events='"public"."staging_events"'
        ).strip()
    )
    for parameter in ("interval_start", "interval_end", "interval_start_ms", "interval_end_ms"):
        assert f"%({parameter})s" in check.sql
    assert check.passes(0) and not check.passes(-1) and not check.passes(1)


def test_reconciliation_sql_lives_in_include_sql_with_table_placeholders_only():
    assert read_sql("check_songplays_reconcile") == RECONCILIATION_SQL
    fields = {field for _, field, _, _ in string.Formatter().parse(RECONCILIATION_SQL) if field}
    assert fields == {"songplays", "staging_events"}  # nothing else is pasted in


def test_interval_scoped_checks_use_the_fact_tables_start_time():
    scoped = [c for c in compile_checks(default_checks()) if "%(interval_start)s" in c.sql]
    assert {c.table for c in scoped} == {"songplays"}
    fk = [c for c in scoped if c.name.startswith("songplays_") and "_in_" in c.name]
    assert len(fk) == 4


def test_reconciliation_follows_the_schema():
    (check,) = [
        c for c in default_checks("analytics") if c["name"].endswith("reconcile_with_staging")
    ]
    assert '"analytics"."songplays"' in check["sql"]
    assert '"analytics"."staging_events"' in check["sql"]
