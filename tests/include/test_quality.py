"""Unit tests for sparkify.quality: checks as data compiled to SQL, and verdicts."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pendulum
import pytest

from sparkify.quality import (
    CheckResult,
    CompiledCheck,
    check_parameters,
    compile_check,
    compile_checks,
    failure_message,
)

SCOPE = '"start_time" >= %(interval_start)s AND "start_time" < %(interval_end)s'

# ----------------------------------------------------------------------------- kinds


def test_row_count_min_default_and_explicit_minimum():
    check = compile_check({"name": "users_rows", "table": "users", "kind": "row_count_min"})
    assert check == CompiledCheck(
        name="users_rows",
        table="users",
        sql='SELECT COUNT(*) FROM "public"."users"',
        comparison=">=",
        expected=1,
    )
    five = compile_check({"name": "n", "table": "users", "kind": "row_count_min", "min": 5})
    assert (five.comparison, five.expected) == (">=", 5)
    assert five.passes(5) and not five.passes(4)


def test_row_count_min_in_interval():
    check = compile_check(
        {"name": "n", "table": "songplays", "kind": "row_count_min",
         "interval_column": "start_time"}
    )  # fmt: skip
    assert check.sql == f'SELECT COUNT(*) FROM "public"."songplays" WHERE {SCOPE}'


def test_not_null_over_several_columns():
    check = compile_check(
        {"name": "nn", "table": "users", "kind": "not_null", "columns": ["user_id", "level"]}
    )
    assert check.sql == (
        'SELECT COUNT(*) FROM "public"."users" WHERE ("user_id" IS NULL OR "level" IS NULL)'
    )
    assert (check.comparison, check.expected, check.parameters) == ("==", 0, {})


def test_not_null_accepts_one_column_as_a_string_and_scopes_to_the_interval():
    check = compile_check(
        {"name": "nn", "table": "songplays", "kind": "not_null", "columns": "user_id",
         "interval_column": "start_time"}
    )  # fmt: skip
    assert check.sql == (
        f'SELECT COUNT(*) FROM "public"."songplays" WHERE {SCOPE} AND ("user_id" IS NULL)'
    )


def test_unique():
    check = compile_check({"name": "u", "table": "songs", "kind": "unique", "columns": ["song_id"]})
    assert check.sql == (
        'SELECT COUNT(*) FROM (SELECT "song_id" FROM "public"."songs" '
        'GROUP BY "song_id" HAVING COUNT(*) > 1) AS duplicates'
    )
    assert (check.comparison, check.expected) == ("==", 0)


def test_unique_composite_in_interval():
    check = compile_check(
        {"name": "u", "table": "songplays", "kind": "unique",
         "columns": ["session_id", "start_time"], "interval_column": "start_time"}
    )  # fmt: skip
    assert check.sql == (
        'SELECT COUNT(*) FROM (SELECT "session_id", "start_time" FROM "public"."songplays" '
        f'WHERE {SCOPE} GROUP BY "session_id", "start_time" HAVING COUNT(*) > 1) AS duplicates'
    )


def test_foreign_key():
    check = compile_check(
        {"name": "fk", "table": "songplays", "kind": "foreign_key", "column": "user_id",
         "references": "users.user_id"}
    )  # fmt: skip
    assert check.sql == (
        'SELECT COUNT(*) FROM "public"."songplays" WHERE "user_id" IS NOT NULL AND '
        'NOT EXISTS (SELECT 1 FROM "public"."users" AS r '
        'WHERE r."user_id" = "public"."songplays"."user_id")'
    )
    assert (check.comparison, check.expected, check.parameters) == ("==", 0, {})


def test_foreign_key_in_interval_and_schema():
    check = compile_check(
        {"name": "fk", "table": "songplays", "kind": "foreign_key", "column": "song_id",
         "references": "songs.song_id", "interval_column": "start_time"},
        schema="analytics",
    )  # fmt: skip
    assert check.sql == (
        f'SELECT COUNT(*) FROM "analytics"."songplays" WHERE {SCOPE} AND "song_id" IS NOT NULL '
        'AND NOT EXISTS (SELECT 1 FROM "analytics"."songs" AS r '
        'WHERE r."song_id" = "analytics"."songplays"."song_id")'
    )


def test_accepted_values_bind_each_value():
    check = compile_check(
        {"name": "lvl", "table": "users", "kind": "accepted_values", "column": "level",
         "values": ["free", "paid"]}
    )  # fmt: skip
    assert check.sql == (
        'SELECT COUNT(*) FROM "public"."users" WHERE "level" IS NOT NULL '
        'AND "level" NOT IN (%(accepted_0)s, %(accepted_1)s)'
    )
    assert check.parameters == {"accepted_0": "free", "accepted_1": "paid"}
    assert (check.comparison, check.expected) == ("==", 0)


def test_value_range_min_and_max():
    check = compile_check(
        {"name": "h", "table": "time", "kind": "value_range", "column": "hour", "min": 0,
         "max": 23}
    )  # fmt: skip
    assert check.sql == (
        'SELECT COUNT(*) FROM "public"."time" WHERE ("hour" < %(range_min)s OR "hour" > '
        "%(range_max)s)"
    )
    assert check.parameters == {"range_min": 0, "range_max": 23}


def test_value_range_min_only_in_interval():
    check = compile_check(
        {"name": "d", "table": "songplays", "kind": "value_range", "column": "session_id",
         "min": 1, "interval_column": "start_time"}
    )  # fmt: skip
    assert check.sql == (
        f'SELECT COUNT(*) FROM "public"."songplays" WHERE {SCOPE} AND ("session_id" < '
        "%(range_min)s)"
    )
    assert check.parameters == {"range_min": 1}


def test_value_range_max_only():
    check = compile_check(
        {"name": "m", "table": "time", "kind": "value_range", "column": "month", "max": 12}
    )
    assert check.parameters == {"range_max": 12}
    assert check.sql.endswith('WHERE ("month" > %(range_max)s)')


# ----------------------------------------------------------------------------- custom SQL


def test_custom_sql_defaults_to_equality_and_strips_the_semicolon():
    check = compile_check(
        {"name": "c", "table": "songplays", "sql": "  SELECT 0;\n", "expected": 0}
    )
    assert check == CompiledCheck("c", "songplays", "SELECT 0", "==", 0)
    assert check.passes(0) and not check.passes(1)
    assert check.describe_expected() == "== 0"


@pytest.mark.parametrize(
    ("comparison", "passing", "failing", "described"),
    [
        (">=", [10, 11], [9], ">= 10"),
        ("<=", [10, 9], [11], "<= 10"),
        ("==", [10], [9, 11], "== 10"),
    ],
)
def test_custom_sql_comparisons(comparison, passing, failing, described):
    check = compile_check(
        {"name": "c", "table": "t", "sql": "SELECT 1", "expected": 10, "comparison": comparison}
    )
    assert check.comparison == comparison
    assert all(check.passes(v) for v in passing)
    assert not any(check.passes(v) for v in failing)
    assert check.describe_expected() == described


def test_custom_sql_between_is_inclusive():
    check = compile_check(
        {"name": "c", "table": "t", "sql": "SELECT 1", "comparison": "between",
         "expected": 5, "expected_max": 8}
    )  # fmt: skip
    assert [check.passes(v) for v in (4, 5, 6, 8, 9)] == [False, True, True, True, False]
    assert check.describe_expected() == "between 5 and 8"


@pytest.mark.parametrize(
    ("check", "message"),
    [
        ({"name": "c", "table": "t", "sql": "SELECT 1"}, "custom SQL needs 'expected'"),
        (
            {"name": "c", "table": "t", "sql": "SELECT 1", "expected": 1, "comparison": "!="},
            "comparison must be ==, >=, <= or between",
        ),
        (
            {"name": "c", "table": "t", "sql": "SELECT 1", "expected": 1, "comparison": "between"},
            "'between' needs 'expected_max'",
        ),
    ],
)
def test_custom_sql_errors(check, message):
    with pytest.raises(ValueError, match=message):
        compile_check(check)


def test_custom_sql_with_the_expected_value_in_the_query():
    check = compile_check(
        {"name": "c", "table": "t", "sql": "SELECT 3, 4", "expected_in_query": True}
    )
    assert (check.comparison, check.expected, check.expected_in_query) == ("==", None, True)
    assert check.judge((4, 4)) == (True, "4", "== 4")
    assert check.judge((3, 4)) == (False, "3", "== 4")
    assert check.judge((None, 4)) == (False, "None", "== 4")
    # a query that returns no expected value fails, it does not compare with None
    assert check.judge((4,)) == (False, "4", "== None")
    assert check.judge(None) == (False, "None", "== None")
    at_least = compile_check(
        {"name": "c", "table": "t", "sql": "SELECT 3, 4", "expected_in_query": True,
         "comparison": ">="}
    )  # fmt: skip
    assert at_least.judge((5, 4)) == (True, "5", ">= 4")


@pytest.mark.parametrize("extra", [{"expected": 0}, {"comparison": "between", "expected_max": 3}])
def test_expected_in_query_refuses_a_fixed_expected_or_between(extra):
    check = {"name": "c", "table": "t", "sql": "SELECT 1, 1", "expected_in_query": True, **extra}
    with pytest.raises(ValueError, match="check 'c': with 'expected_in_query' the query returns"):
        compile_check(check)


def test_judge_of_a_fixed_expected_value():
    check = compile_check({"name": "c", "table": "t", "sql": "SELECT 2", "expected": 0})
    assert check.judge((2,)) == (False, "2", "== 0")
    assert check.judge((0, 99)) == (True, "0", "== 0")  # a second column means nothing here


# ----------------------------------------------------------------------------- parameters


def test_check_parameters_of_a_daily_run():
    params = check_parameters(
        pendulum.datetime(2018, 11, 2, tz="UTC"), pendulum.datetime(2018, 11, 3, tz="UTC"), "r1"
    )
    assert params == {
        "interval_start": datetime(2018, 11, 2),
        "interval_end": datetime(2018, 11, 3),
        "interval_start_ms": 1_541_116_800_000,
        "interval_end_ms": 1_541_203_200_000,
        "days_start": datetime(2018, 11, 2),
        "days_end": datetime(2018, 11, 3),
        "days_start_ms": 1_541_116_800_000,
        "days_end_ms": 1_541_203_200_000,
        "run_id": "r1",
    }


def test_check_parameters_of_an_hourly_run_bound_its_whole_day():
    start = datetime(2018, 11, 2, 23, tzinfo=UTC)
    params = check_parameters(start, datetime(2018, 11, 3, tzinfo=UTC), "hourly")
    assert (params["interval_start"], params["interval_end"]) == (
        datetime(2018, 11, 2, 23), datetime(2018, 11, 3)
    )  # fmt: skip
    assert (params["days_start"], params["days_end"]) == (
        datetime(2018, 11, 2), datetime(2018, 11, 3)
    )  # fmt: skip
    assert params["days_end_ms"] - params["days_start_ms"] == 86_400_000


def test_check_parameters_of_an_interval_across_midnight_cover_both_days():
    params = check_parameters(
        datetime(2018, 11, 2, 12, tzinfo=UTC), datetime(2018, 11, 3, 12, tzinfo=UTC), "r"
    )
    assert (params["days_start"], params["days_end"]) == (
        datetime(2018, 11, 2), datetime(2018, 11, 4)
    )  # fmt: skip


# ----------------------------------------------------------------------------- passes()


def test_passes_none_observed_fails_every_comparison():
    for comparison in ("==", ">=", "<="):
        check = CompiledCheck("c", "t", "SELECT 1", comparison, 0)
        assert check.passes(None) is False
    between = CompiledCheck("c", "t", "SELECT 1", "between", 0, 10)
    assert between.passes(None) is False


def test_passes_with_database_number_types():
    check = CompiledCheck("c", "t", "SELECT 1", "==", 0)
    assert check.passes(Decimal("0")) is True
    assert check.passes(0.0) is True
    assert check.passes(Decimal("1")) is False


# ----------------------------------------------------------------------------- invalid checks


@pytest.mark.parametrize(
    ("check", "message"),
    [
        ({"table": "users", "kind": "row_count_min"}, "every check needs a 'name'"),
        ({"name": "", "table": "users", "kind": "row_count_min"}, "every check needs a 'name'"),
        ({"name": "n", "kind": "row_count_min"}, "check 'n': 'table' is required"),
        ({"name": "n", "table": "users"}, "check 'n': 'kind' must be one of"),
        ({"name": "n", "table": "users", "kind": "bogus"}, "check 'n': 'kind' must be one of"),
        ({"name": "n", "table": "users", "kind": "not_null"}, "check 'n': 'columns' is required"),
        ({"name": "n", "table": "users", "kind": "unique", "columns": []}, "'columns' is required"),
        (
            {"name": "n", "table": "songplays", "kind": "foreign_key", "column": "user_id",
             "references": "users"},
            "check 'n': 'references' must be 'table.column'",
        ),
        (
            {"name": "n", "table": "users", "kind": "accepted_values", "column": "level",
             "values": []},
            "check 'n': 'values' is required",
        ),
        (
            {"name": "n", "table": "time", "kind": "value_range", "column": "hour"},
            "check 'n': value_range needs 'min' and/or 'max'",
        ),
        (
            {"name": "n", "table": "users; drop table users", "kind": "row_count_min"},
            "not a valid SQL identifier",
        ),
        (
            {"name": "n", "table": "users", "kind": "not_null", "columns": ["user_id); --"]},
            "not a valid SQL identifier",
        ),
        (
            {"name": "n", "table": "users", "kind": "row_count_min",
             "interval_column": "Start_Time"},
            "not a valid SQL identifier",
        ),
    ],
)  # fmt: skip
def test_compile_check_rejects_invalid_checks(check, message):
    with pytest.raises(ValueError, match=message):
        compile_check(check)


@pytest.mark.parametrize(
    "check",
    [
        {"name": "bad_column_check", "table": "users", "kind": "not_null", "columns": ["User"]},
        {"name": "bad_table_check", "table": "Users", "kind": "row_count_min"},
        {"name": "two_columns_fk", "table": "songplays", "kind": "foreign_key",
         "column": ["user_id", "song_id"], "references": "users.user_id"},
    ],
)  # fmt: skip
def test_compile_check_errors_name_the_check(check):
    with pytest.raises(ValueError, match=check["name"]):
        compile_check(check)


def test_compile_checks_reports_every_invalid_check_together():
    checks = [
        {"name": "ok", "table": "users", "kind": "row_count_min"},
        {"name": "no_kind", "table": "users"},
        {"name": "no_values", "table": "users", "kind": "accepted_values", "column": "level"},
        {"name": "ok", "table": "songs", "kind": "row_count_min"},
        {"name": "no_expected", "table": "users", "sql": "SELECT 1"},
    ]
    with pytest.raises(ValueError) as info:
        compile_checks(checks)
    lines = str(info.value).splitlines()
    assert lines[0] == "invalid data quality checks:"
    assert len(lines) == 5
    assert "check 'no_kind': 'kind' must be one of" in lines[1]
    assert lines[2] == "check 'no_values': 'values' is required"
    assert lines[3] == "check name 'ok' is used twice"
    assert lines[4] == "check 'no_expected': custom SQL needs 'expected'"


def test_compile_checks_returns_compiled_in_order_with_schema():
    compiled = compile_checks(
        [
            {"name": "a", "table": "users", "kind": "row_count_min"},
            {"name": "b", "table": "songs", "sql": "SELECT 0", "expected": 0},
        ],
        schema="dwh",
    )
    assert [c.name for c in compiled] == ["a", "b"]
    assert compiled[0].sql == 'SELECT COUNT(*) FROM "dwh"."users"'


# ----------------------------------------------------------------------------- results


def test_check_result_line():
    assert CheckResult("a", "users", True, "3", ">= 1").line() == (
        "passed: a on users: observed 3, expected >= 1"
    )
    assert CheckResult("b", "songs", False, "2", "== 0").line() == (
        "FAILED: b on songs: observed 2, expected == 0"
    )


def test_failure_message_lists_every_failed_check_only():
    results = [
        CheckResult("rows", "users", True, "10", ">= 1"),
        CheckResult("nulls", "users", False, "2", "== 0"),
        CheckResult("range", "time", False, "None", "between 0 and 23"),
        CheckResult("broken", "songs", False, "error: relation does not exist", "== 0"),
    ]
    assert failure_message(results) == (
        "3 of 4 data quality checks failed:\n"
        "- FAILED: nulls on users: observed 2, expected == 0\n"
        "- FAILED: range on time: observed None, expected between 0 and 23\n"
        "- FAILED: broken on songs: observed error: relation does not exist, expected == 0"
    )


def test_custom_sql_refuses_interval_column():
    check = {"name": "c", "table": "songplays", "sql": "SELECT 1", "expected": 1,
             "interval_column": "start_time"}  # fmt: skip
    with pytest.raises(ValueError, match=r"check 'c': custom SQL scopes itself"):
        compile_check(check)
