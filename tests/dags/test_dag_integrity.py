"""DAG integrity (the Astro template's checks, plus this project's shape of sparkify_etl)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pendulum
import pytest
from airflow.models import DagBag

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dag_bag() -> DagBag:
    return DagBag(dag_folder=str(DAGS_FOLDER), include_examples=False)


def test_no_import_errors(dag_bag):
    assert dag_bag.import_errors == {}
    assert dag_bag.dag_ids, "no DAG found"


def test_every_dag_has_tags_and_retries(dag_bag):
    for dag_id, dag in dag_bag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        for task in dag.tasks:
            assert task.retries >= 2, f"{dag_id}.{task.task_id} retries {task.retries} < 2"


def test_sparkify_etl_default_args_and_schedule(dag_bag):
    dag = dag_bag.dags["sparkify_etl"]
    args = dag.default_args
    assert args["owner"] == "sparkify"
    assert args["depends_on_past"] is False
    assert args["retries"] == 3
    assert args["retry_delay"] == timedelta(minutes=5)
    assert args["email_on_retry"] is False
    assert dag.start_date == pendulum.datetime(2018, 11, 1, tz="UTC")
    assert dag.schedule_interval == "@daily"
    assert dag.catchup is False
    assert dag.max_active_runs == 1  # the staging tables are shared by runs
    assert dag.doc_md and "sparkify" in dag.tags


def test_sparkify_etl_reads_like_its_diagram(dag_bag):
    dag = dag_bag.dags["sparkify_etl"]
    downstream = {t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks}
    dimensions = [
        "load_artist_dim_table",
        "load_song_dim_table",
        "load_time_dim_table",
        "load_user_dim_table",
    ]
    report = "write_run_report"
    assert downstream == {
        "begin_execution": ["snapshot_row_counts"],
        "snapshot_row_counts": ["create_tables", report],
        "create_tables": ["stage_events", "stage_songs", report],
        "stage_events": ["load_songplays_fact_table", report],
        "stage_songs": ["load_songplays_fact_table", report],
        "load_songplays_fact_table": [*dimensions, report],
        **{task_id: ["run_data_quality_checks", report] for task_id in dimensions},
        "run_data_quality_checks": ["stop_execution", report],
        "stop_execution": [],
        report: [],
    }
    # The report waits for every task whatever its state (a failed run gets one too);
    # stop_execution still succeeds only when the checks pass.
    assert dag.get_task(report).trigger_rule == "all_done"
    assert dag.get_task("stop_execution").trigger_rule == "all_success"
    assert set(dag.get_task(report).upstream_task_ids) == {t.task_id for t in dag.tasks} - {
        "begin_execution",
        "stop_execution",
        report,
    }


def test_sparkify_etl_alerts_on_failure(dag_bag):
    from sparkify.alerts import alert_on_failure

    dag = dag_bag.dags["sparkify_etl"]
    assert dag.default_args["on_failure_callback"] is alert_on_failure
    callbacks = {t.task_id: t.on_failure_callback for t in dag.tasks}
    assert all(alert_on_failure in (c if isinstance(c, list) else [c]) for c in callbacks.values())


def test_sparkify_daily_report_runs_on_the_songplays_dataset(dag_bag):
    dag = dag_bag.dags["sparkify_daily_report"]
    etl = dag_bag.dags["sparkify_etl"]
    songplays = {o.uri for o in etl.get_task("load_songplays_fact_table").outlets}
    condition = dag.timetable.dataset_condition
    assert {uri for uri, _ in condition.iter_datasets()} == songplays
    assert songplays == {"astro://sparkify_postgres@?table=songplays&schema=public"}
    assert dag.catchup is False and dag.doc_md and "sparkify" in dag.tags


def test_dimension_modes_and_staging_inputs(dag_bag):
    dag = dag_bag.dags["sparkify_etl"]
    modes = {t.table: t.mode for t in dag.tasks if t.task_type == "LoadDimensionOperator"}
    assert modes == {
        "users": "upsert",
        "songs": "truncate-insert",
        "artists": "truncate-insert",
        "time": "upsert",
    }
    events = dag.get_task("stage_events")
    assert events.input_file.path.endswith("/log_data/")
    assert events.key_template == "log_data/%Y/%m/%Y-%m-%d-events.json"
    assert dag.get_task("stage_songs").key_template is None
    assert events.output_table.name == "staging_events"


def test_loaded_tables_are_dataset_outlets(dag_bag):
    dag = dag_bag.dags["sparkify_etl"]
    outlets = {o.name for t in dag.tasks for o in t.outlets}
    assert {
        "staging_events",
        "staging_songs",
        "songplays",
        "users",
        "songs",
        "artists",
        "time",
    } <= outlets
