"""Run data quality checks declared as data; fail once, naming every failed check."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.exceptions import AirflowFailException
from airflow.models import BaseOperator

from sparkify import sql
from sparkify.config import warehouse_dialect
from sparkify.quality import CheckResult, check_parameters, compile_checks, failure_message
from sparkify.warehouse import transaction

if TYPE_CHECKING:
    from airflow.utils.context import Context


class DataQualityOperator(BaseOperator):
    """Run every check, record each result, and fail if any check failed.

    Checks are dicts (see ``include/sparkify/quality.py`` for the kinds). Each runs in its
    own statement, so a check whose SQL errors is reported as failed with the error, and
    the others still run; they see the bind parameters of ``check_parameters`` (the
    interval, the days of its log files, the run id). Results go to ``results_table``
    (run id, try number, check, table, passed, observed, expected, checked at), once per
    attempt: a re-run of the same attempt replaces what it recorded. The task then fails
    with one message listing every failed check with observed against expected, as an
    ``AirflowFailException``: a retry would check the same data again, so the task fails
    at once, without retries, and its ``on_failure_callback`` (the alert) fires. A
    warehouse that cannot be reached still fails with a retryable error.

    :param conn_id: Airflow connection of the warehouse.
    :param checks: the checks, one dict each. Templated.
    :param schema: schema of the checked tables and of ``results_table``.
    :param results_table: where results are recorded; ``None`` records nothing. A table
        without the ``try_number`` column (created before it existed) gets it.
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
        """Run every check on ``cursor``; a check whose SQL errors is a failed result.

        :param cursor: a cursor in the checks' transaction.
        :param parameters: the bind parameters every check sees.
        """
        results = []
        for check in compile_checks(self.checks, self.schema):
            try:
                cursor.execute(check.sql, {**parameters, **check.parameters})
                passed, shown, expected = check.judge(cursor.fetchone())
            except Exception as exc:
                cursor.connection.rollback()
                lines = str(exc).strip().splitlines()
                passed, shown = False, f"error: {lines[0] if lines else type(exc).__name__}"
                expected = check.describe_expected()
            result = CheckResult(check.name, check.table, passed, shown, expected)
            (self.log.info if passed else self.log.warning)(result.line())
            results.append(result)
        return results

    def record(
        self, cursor: Any, run_id: str, try_number: int, results: Sequence[CheckResult]
    ) -> None:
        """Store the results of one attempt, replacing what that attempt stored before.

        :param cursor: a cursor in the checks' transaction.
        :param run_id: the Airflow run id.
        :param try_number: the task's attempt (Airflow's try number).
        :param results: the attempt's results.
        """
        tables = {"results": (self.schema, self.results_table)}
        cursor.execute(sql.read_sql("table_columns"), (self.schema, self.results_table))
        if "try_number" not in {row[0] for row in cursor.fetchall()}:
            cursor.execute(sql.render_tables(sql.read_sql("check_results_add_try_number"), tables))
        checked_at = datetime.now(UTC).replace(tzinfo=None)
        cursor.execute(
            sql.render_tables(sql.read_sql("check_results_forget"), tables), (run_id, try_number)
        )
        cursor.executemany(
            sql.render_tables(sql.read_sql("check_results_insert"), tables),
            [
                (run_id, try_number, r.name, r.table, r.passed, r.observed[:1024], r.expected,
                 checked_at)
                for r in results
            ],
        )  # fmt: skip

    def execute(self, context: Context) -> list[dict[str, Any]]:
        run_id = context["run_id"]
        parameters = check_parameters(
            context["data_interval_start"], context["data_interval_end"], run_id
        )
        if self.tables:
            names = (getattr(table, "name", table) for table in self.tables)
            self.log.info("Checking the loads of: %s", ", ".join(map(str, names)))
        with transaction(self.conn_id) as cursor:
            if self.results_table and warehouse_dialect(self.conn_id) == "redshift":
                # Runs overlap: on Redshift, writers of one table lock it first, or the
                # cluster may abort one of them (serializable isolation).
                results_sql = sql.qualified(self.schema, self.results_table)
                cursor.execute(sql.lock_tables([results_sql], "redshift"))
            results = self.run_checks(cursor, parameters)
            if self.results_table:
                self.record(cursor, run_id, context["ti"].try_number, results)
        if not all(r.passed for r in results):
            raise AirflowFailException(failure_message(results))
        self.log.info("All %s data quality checks passed", len(results))
        return [r.__dict__ for r in results]
