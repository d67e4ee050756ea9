"""Data quality checks declared as data: one dict per check, compiled to one SQL each.

A check is a dict with ``name``, ``table`` and either a ``kind`` or ``sql``:

============================  =========================================  ==============
kind                          other keys                                 passes when
============================  =========================================  ==============
``row_count_min``             ``min`` (default 1)                        rows >= min
``not_null``                  ``columns``                                no NULL in any
``unique``                    ``columns``                                no duplicate
``foreign_key``               ``column``, ``references`` (``t.col``)     no orphan
``accepted_values``           ``column``, ``values``                     none outside
``value_range``               ``column``, ``min`` and/or ``max``         none outside
(custom) ``sql``              ``expected``, ``comparison`` (==, >=, <=,  observed
                              between; ``expected_max`` for between)     compares
============================  =========================================  ==============

A check of a kind may set ``interval_column``: it then only looks at the rows of the run's
data interval (``%(interval_start)s`` to ``%(interval_end)s``). Custom SQL uses the bind
parameters of ``check_parameters`` itself. Every query returns one number, the *observed*
value; custom SQL with ``expected_in_query`` (and ``==``, ``>=`` or ``<=``) returns two,
observed and *expected*, for a check against a number that only the warehouse knows (the
plays staging counted), so a failure shows both.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sparkify.s3_objects import days_in_interval
from sparkify.sql import identifier, qualified
from sparkify.warehouse import interval_parameters

KINDS = ("row_count_min", "not_null", "unique", "foreign_key", "accepted_values", "value_range")
COMPARISONS = {"==": operator.eq, ">=": operator.ge, "<=": operator.le}


@dataclass(frozen=True)
class CompiledCheck:
    """One check ready to run: its query and how to judge the number it returns."""

    name: str
    table: str
    sql: str
    comparison: str
    expected: Any
    expected_max: Any = None
    parameters: dict[str, Any] = field(default_factory=dict)
    expected_in_query: bool = False

    def passes(self, observed: Any, expected: Any = None) -> bool:
        """Whether ``observed`` passes; ``expected`` is the query's own (``expected_in_query``).

        :param observed: the number the query returned.
        :param expected: the query's second number, for ``expected_in_query`` checks.
        """
        expected = expected if self.expected_in_query else self.expected
        if observed is None or expected is None:
            return False
        if self.comparison == "between":
            return expected <= observed <= self.expected_max
        return COMPARISONS[self.comparison](observed, expected)

    def describe_expected(self, expected: Any = None) -> str:
        """What passes, as text (``== 0``, ``between 0 and 23``).

        :param expected: the query's second number, for ``expected_in_query`` checks.
        """
        expected = expected if self.expected_in_query else self.expected
        if self.comparison == "between":
            return f"between {expected} and {self.expected_max}"
        return f"{self.comparison} {expected}"

    def judge(self, row: Sequence[Any] | None) -> tuple[bool, str, str]:
        """``(passed, observed, expected)`` as text, for the row the query returned.

        :param row: the query's first row, ``None`` when it returned none.
        """
        observed = row[0] if row else None
        expected = row[1] if self.expected_in_query and row and len(row) > 1 else None
        return self.passes(observed, expected), str(observed), self.describe_expected(expected)


@dataclass(frozen=True)
class CheckResult:
    name: str
    table: str
    passed: bool
    observed: str
    expected: str

    def line(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        return (
            f"{verdict}: {self.name} on {self.table}: "
            f"observed {self.observed}, expected {self.expected}"
        )


def _columns(check: Mapping[str, Any], key: str) -> list[str]:
    columns = check.get(key)
    if isinstance(columns, str):
        columns = [columns]
    if not columns:
        raise ValueError(f"check {check.get('name')!r}: {key!r} is required")
    return [identifier(c) for c in columns]


def _where(conditions: Sequence[str]) -> str:
    return f" WHERE {' AND '.join(conditions)}" if conditions else ""


def _single_column(check: Mapping[str, Any], key: str) -> str:
    columns = _columns(check, key)
    if len(columns) != 1:
        raise ValueError(f"{key!r} takes one column, got {check.get(key)!r}")
    return columns[0]


def compile_check(check: Mapping[str, Any], schema: str = "public") -> CompiledCheck:
    """Validate one check dict and build its query; raises ``ValueError`` naming the check."""
    name = check.get("name")
    if not name or not isinstance(name, str):
        raise ValueError(f"every check needs a 'name': {dict(check)!r}")
    try:
        return _compile(name, check, schema)
    except ValueError as exc:
        if f"check {name!r}" in str(exc):
            raise
        raise ValueError(f"check {name!r}: {exc}") from None


def _compile(name: str, check: Mapping[str, Any], schema: str) -> CompiledCheck:
    table_name = check.get("table")
    if not table_name:
        raise ValueError(f"check {name!r}: 'table' is required")
    table = qualified(schema, table_name)
    scope: list[str] = []
    if check.get("interval_column"):
        col = identifier(check["interval_column"])
        scope.append(f"{col} >= %(interval_start)s AND {col} < %(interval_end)s")

    if "sql" in check:
        if check.get("interval_column"):
            raise ValueError(
                f"check {name!r}: custom SQL scopes itself with the %(interval_start)s and "
                "%(interval_end)s bind parameters; 'interval_column' applies to kinds only"
            )
        comparison = check.get("comparison", "==")
        if comparison not in (*COMPARISONS, "between"):
            raise ValueError(f"check {name!r}: comparison must be ==, >=, <= or between")
        in_query = bool(check.get("expected_in_query"))
        if in_query and ("expected" in check or comparison == "between"):
            raise ValueError(
                f"check {name!r}: with 'expected_in_query' the query returns the expected "
                "value (no 'expected'), compared with ==, >= or <="
            )
        if "expected" not in check and not in_query:
            raise ValueError(f"check {name!r}: custom SQL needs 'expected'")
        if comparison == "between" and "expected_max" not in check:
            raise ValueError(f"check {name!r}: 'between' needs 'expected_max'")
        return CompiledCheck(
            name, table_name, check["sql"].strip().rstrip(";"), comparison,
            check.get("expected"), check.get("expected_max"), expected_in_query=in_query,
        )  # fmt: skip

    kind = check.get("kind")
    count = f"SELECT COUNT(*) FROM {table}"  # noqa: S608 - validated identifiers
    parameters: dict[str, Any] = {}
    if kind == "row_count_min":
        minimum = check.get("min", 1)
        return CompiledCheck(name, table_name, count + _where(scope), ">=", minimum)
    if kind == "not_null":
        nulls = " OR ".join(f"{c} IS NULL" for c in _columns(check, "columns"))
        query = count + _where([*scope, f"({nulls})"])
    elif kind == "unique":
        cols = ", ".join(_columns(check, "columns"))
        query = (
            f"SELECT COUNT(*) FROM (SELECT {cols} FROM {table}{_where(scope)} "  # noqa: S608
            f"GROUP BY {cols} HAVING COUNT(*) > 1) AS duplicates"
        )
    elif kind == "foreign_key":
        column = _single_column(check, "column")
        ref_table, _, ref_column = str(check.get("references", "")).partition(".")
        if not ref_column:
            raise ValueError(f"check {name!r}: 'references' must be 'table.column'")
        reference = qualified(schema, ref_table)
        orphan = (
            f"NOT EXISTS (SELECT 1 FROM {reference} AS r "  # noqa: S608
            f"WHERE r.{identifier(ref_column)} = {table}.{column})"
        )
        query = count + _where([*scope, f"{column} IS NOT NULL", orphan])
    elif kind == "accepted_values":
        column = _single_column(check, "column")
        values = list(check.get("values") or [])
        if not values:
            raise ValueError(f"check {name!r}: 'values' is required")
        parameters = {f"accepted_{i}": v for i, v in enumerate(values)}
        allowed = ", ".join(f"%({key})s" for key in parameters)
        query = count + _where([*scope, f"{column} IS NOT NULL", f"{column} NOT IN ({allowed})"])
    elif kind == "value_range":
        column = _single_column(check, "column")
        outside = []
        if "min" in check:
            parameters["range_min"] = check["min"]
            outside.append(f"{column} < %(range_min)s")
        if "max" in check:
            parameters["range_max"] = check["max"]
            outside.append(f"{column} > %(range_max)s")
        if not outside:
            raise ValueError(f"check {name!r}: value_range needs 'min' and/or 'max'")
        query = count + _where([*scope, f"({' OR '.join(outside)})"])
    else:
        raise ValueError(f"check {name!r}: 'kind' must be one of {KINDS}, or give 'sql'")
    return CompiledCheck(name, table_name, query, "==", 0, parameters=parameters)


def compile_checks(
    checks: Sequence[Mapping[str, Any]], schema: str = "public"
) -> list[CompiledCheck]:
    """Compile every check; names must be unique. All errors are reported together."""
    compiled, errors, seen = [], [], set()
    for check in checks:
        try:
            item = compile_check(check, schema)
        except ValueError as exc:
            errors.append(str(exc))
            continue
        if item.name in seen:
            errors.append(f"check name {item.name!r} is used twice")
        seen.add(item.name)
        compiled.append(item)
    if errors:
        raise ValueError("invalid data quality checks:\n" + "\n".join(errors))
    return compiled


def check_parameters(start: datetime, end: datetime, run_id: str) -> dict[str, Any]:
    """The bind parameters every check sees, for the data interval ``[start, end)``.

    ``interval_*`` are the interval's (``sparkify.warehouse.interval_parameters``);
    ``days_start``/``days_end`` and their ``*_ms`` bound the UTC days of the interval's
    daily log files (the interval itself for a daily run, its day for an hourly one);
    ``run_id`` is the run's id.

    :param start: start of the data interval (inclusive).
    :param end: end of the data interval (exclusive).
    :param run_id: the Airflow run id.
    """
    days = days_in_interval(start, end)
    first = datetime.combine(days[0], time(), tzinfo=UTC)
    covering = interval_parameters(first, first + timedelta(days=len(days)))
    return {
        **interval_parameters(start, end),
        **{key.replace("interval_", "days_"): value for key, value in covering.items()},
        "run_id": run_id,
    }


def failure_message(results: Sequence[CheckResult]) -> str:
    failed = [r for r in results if not r.passed]
    lines = [f"{len(failed)} of {len(results)} data quality checks failed:"]
    lines += [f"- {r.line()}" for r in failed]
    return "\n".join(lines)
