"""Unit tests for RunReportOperator (no servers): where it writes (file:// URLs), what it
needs from its context, and that it works as a teardown task."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pendulum
import pytest
from airflow.exceptions import AirflowException
from airflow.models import DAG
from airflow.operators.empty import EmptyOperator
from airflow.utils.state import TaskInstanceState
from airflow.utils.trigger_rule import TriggerRule

from operators.run_report import RowCountSnapshotOperator, RunReportOperator
from sparkify.run_report import read_text

RUN_ID = "manual__2024-05-01T12:00:00+00:00"
NAME = "manual__2024-05-01T12_00_00_00_00"


def context(task_instances) -> dict:
    dag_run = SimpleNamespace(
        dag_id="sparkify_etl",
        start_date=datetime(2024, 5, 1, 12, tzinfo=UTC),
        get_task_instances=lambda: task_instances,
    )
    return {"dag_run": dag_run, "run_id": RUN_ID}


def ti(task_id: str, state) -> SimpleNamespace:
    return SimpleNamespace(task_id=task_id, state=state, start_date=None, end_date=None,
                           duration=None, try_number=1, map_index=-1)  # fmt: skip


def test_reports_url_and_storage_conn_id_are_templated():
    assert {"before", "reports_url", "storage_conn_id"} <= set(RunReportOperator.template_fields)
    operator = RunReportOperator(task_id="r", conn_id="redshift")
    assert operator.storage_conn_id == "aws-redshift" and operator.reports_url is None


def test_without_the_warehouse_connection_the_report_is_still_written(tmp_path):
    operator = RunReportOperator(
        task_id="write_run_report",
        conn_id="sparkify_no_such_connection_x",
        reports_url=tmp_path.as_uri(),
    )
    urls = operator.execute(
        context([ti("stage_events", TaskInstanceState.FAILED), ti("stop_execution", None)])
    )
    assert urls["markdown"] == (tmp_path / "sparkify_etl" / f"{NAME}.md").as_uri()
    markdown = read_text(urls["markdown"])
    assert "- **Outcome:** FAILED - failed task(s): stage_events" in markdown
    assert "- **Warehouse:** not readable at report time: " in markdown
    assert "sparkify_no_such_connection_x" in markdown
    assert "| `stop_execution` | no status |" in markdown
    assert read_text(urls["html"]).startswith("<!DOCTYPE html>")


def test_without_a_reports_url_or_variable_it_fails_naming_the_variable(monkeypatch):
    monkeypatch.delenv("AIRFLOW_VAR_SPARKIFY_REPORTS_URL", raising=False)
    operator = RunReportOperator(task_id="write_run_report", conn_id="redshift")
    with pytest.raises(AirflowException, match="sparkify_reports_url"):
        operator.execute(context([]))


def test_it_can_be_a_teardown_of_the_snapshot():
    """The wiring the DAG uses: the report tears down the run whatever its tasks did."""
    with DAG("t", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None):
        begin = EmptyOperator(task_id="begin_execution")
        snapshot = RowCountSnapshotOperator(task_id="snapshot_row_counts", conn_id="redshift")
        work = EmptyOperator(task_id="work")
        report = RunReportOperator(
            task_id="write_run_report",
            conn_id="redshift",
            reports_url="{{ var.value.sparkify_reports_url }}",
            before=snapshot.output,
        ).as_teardown(setups=[begin, snapshot])
        begin >> snapshot >> work >> report
    assert report.is_teardown
    assert report.trigger_rule == TriggerRule.ALL_DONE_SETUP_SUCCESS
    assert {"begin_execution", "snapshot_row_counts", "work"} <= report.upstream_task_ids
