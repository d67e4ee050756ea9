"""Run data quality checks declared as data; fail once, naming every failed check."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.exceptions import AirflowException
from airflow.models import BaseOperator

from sparkify import sql
from sparkify.quality import CheckResult, compile_checks, failure_message
from sparkify.warehouse import interval_parameters, transaction

if TYPE_CHECKING:
    from airflow.utils.context import Context


class DataQualityOperator(BaseOperator):
    """Run every check, record each result, and fail if any check failed.

    Checks are dicts (see ``include/sparkify/quality.py`` for the kinds). Each runs in its
    own statement, so a check whose SQL errors is reported as failed with the error, and
    the others still run. Results go to ``results_table`` (run id, check, table, passed,
    observed, expected, checked at); the task then fails with one message listing every
    failed check with observed against expected.

    :param conn_id: Airflow connection of the warehouse.
    :param checks: the checks, one dict each. Templated.
    :param schema: schema of the checked tables and of ``results_table``.
    :param results_table: where results are recorded; ``None`` records nothing.
    :param tables: the loaded tables the checks look at, as astro ``Table`` objects or the
        ``.output`` of the tasks that load them: the checks run once those are loaded (the
        task's dependencies come from them). Templated.

    Give the task ``outlets`` (the checked tables as Datasets) to publish them only when
    every check passed: Airflow emits Dataset events for a task that succeeded.
    """

    template_fields: Sequence[str] = ("checks", "tables")
    ui_color = "#89DA59"

    def __init__(
        self,
        *,
        conn_id: str,
        checks: Sequence[Mapping[str, Any]],
        schema: str = "public",
        results_table: str | None = "data_quality_results",
        tables: Sequence[Any] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.tables = list(tables)
        if not checks:
            raise ValueError("DataQualityOperator needs at least one check")
        self.conn_id = conn_id
        self.checks = list(checks)
        self.schema = schema
        self.results_table = results_table
        compile_checks(self.checks, schema)  # fail at parse time on a malformed check

    def run_checks(self, cursor: Any, parameters: Mapping[str, Any]) -> list[CheckResult]:
        results = []
        for check in compile_checks(self.checks, self.schema):
            try:
                cursor.execute(check.sql, {**parameters, **check.parameters})
                row = cursor.fetchone()
                observed = row[0] if row else None
                passed = check.passes(observed)
                shown = str(observed)
            except Exception as exc:
                cursor.connection.rollback()
                lines = str(exc).strip().splitlines()
                passed, shown = False, f"error: {lines[0] if lines else type(exc).__name__}"
            result = CheckResult(check.name, check.table, passed, shown, check.describe_expected())
            (self.log.info if passed else self.log.warning)(result.line())
            results.append(result)
        return results

    def record(self, cursor: Any, run_id: str, results: Sequence[CheckResult]) -> None:
        table = sql.qualified(self.schema, self.results_table)
        checked_at = datetime.now(UTC).replace(tzinfo=None)
        cursor.executemany(
            sql.insert_check_results(table),
            [
                (run_id, r.name, r.table, r.passed, r.observed[:1024], r.expected, checked_at)
                for r in results
            ],
        )

    def execute(self, context: Context) -> list[dict[str, Any]]:
        parameters = interval_parameters(
            context["data_interval_start"], context["data_interval_end"]
        )
        if self.tables:
            names = (getattr(table, "name", table) for table in self.tables)
            self.log.info("Checking the loads of: %s", ", ".join(map(str, names)))
        with transaction(self.conn_id) as cursor:
            results = self.run_checks(cursor, parameters)
            if self.results_table:
                self.record(cursor, context["run_id"], results)
        if not all(r.passed for r in results):
            raise AirflowException(failure_message(results))
        self.log.info("All %s data quality checks passed", len(results))
        return [r.__dict__ for r in results]
