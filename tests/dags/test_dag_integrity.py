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
    # Runs of different intervals run at once: each stages its own rows of staging_events
    # and the shared tables are written under locks.
    assert dag.max_active_runs == 32
    assert dag.doc_md and "sparkify" in dag.tags


DIMENSIONS = {
    "load_user_dim_table": {"staging_events": "stage_events"},
    "load_song_dim_table": {"staging_songs": "stage_songs"},
    "load_artist_dim_table": {"staging_songs": "stage_songs"},
    "load_time_dim_table": {"songplays": "load_songplays_fact_table"},
}
FACT = {
    "load_songplays_fact_table": {"staging_events": "stage_events", "staging_songs": "stage_songs"}
}


def test_sparkify_etl_has_the_astro_sdk_shape(dag_bag):
    from astro.sql import LoadFileOperator, RawSQLOperator

    dag = dag_bag.dags["sparkify_etl"]
    kinds = {
        t.task_id: "load_file" if isinstance(t, LoadFileOperator)
        else "run_raw_sql" if isinstance(t, RawSQLOperator)
        else type(t).__name__
        for t in dag.tasks
    }  # fmt: skip
    assert kinds == {
        "snapshot_row_counts": "RowCountSnapshotOperator",
        "create_tables": "run_raw_sql",
        "wait_for_log_file": "LogFilesSensor",
        "stage_events": "load_file",
        "stage_songs": "load_file",
        "load_songplays_fact_table": "run_raw_sql",
        **{task_id: "run_raw_sql" for task_id in DIMENSIONS},
        "run_data_quality_checks": "DataQualityOperator",
        "write_run_report": "RunReportOperator",
    }


def test_loads_depend_on_what_they_read_through_table_arguments(dag_bag):
    """Each fact and dimension task gets the Tables it reads as arguments (XComArgs of the
    tasks that load them); its upstream tasks are exactly those."""
    from airflow.models.xcom_arg import PlainXComArg

    dag = dag_bag.dags["sparkify_etl"]
    for task_id, expected in {**FACT, **DIMENSIONS}.items():
        task = dag.get_task(task_id)
        arguments = {name: arg.operator.task_id for name, arg in task.op_kwargs.items()}
        assert arguments == expected, task_id
        assert all(isinstance(arg, PlainXComArg) for arg in task.op_kwargs.values())
        assert task.upstream_task_ids == set(expected.values()), task_id
    checks = dag.get_task("run_data_quality_checks")
    assert {arg.operator.task_id for arg in checks.tables} == {*FACT, *DIMENSIONS}
    assert checks.upstream_task_ids == {*FACT, *DIMENSIONS}


def test_create_tables_runs_one_at_a_time_across_runs(dag_bag):
    """PostgreSQL's CREATE TABLE IF NOT EXISTS is not safe against itself: of the runs
    active at once, one creates the tables at a time; no other task is so limited."""
    dag = dag_bag.dags["sparkify_etl"]
    limited = {t.task_id: t.max_active_tis_per_dag for t in dag.tasks if t.max_active_tis_per_dag}
    assert limited == {"create_tables": 1}


def test_setup_and_teardown_frame_the_run(dag_bag):
    dag = dag_bag.dags["sparkify_etl"]
    downstream = {t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks}
    assert downstream["snapshot_row_counts"] == [
        "create_tables",
        "wait_for_log_file",
        "write_run_report",
    ]
    # The sensor waits while the tables are created; the loads need both.
    assert downstream["create_tables"] == ["stage_events", "stage_songs"]
    assert downstream["wait_for_log_file"] == ["stage_events"]
    assert dag.get_task("stage_events").upstream_task_ids == {"create_tables", "wait_for_log_file"}
    assert downstream["run_data_quality_checks"] == ["write_run_report"]
    # The report runs after everything, whatever the outcome, with one edge: a teardown
    # of the row-count snapshot (its "before" counts), not a leaf wired to every task.
    report = dag.get_task("write_run_report")
    assert report.is_teardown and dag.get_task("snapshot_row_counts").is_setup
    assert report.upstream_task_ids == {"snapshot_row_counts", "run_data_quality_checks"}
    assert report.trigger_rule == "all_done_setup_success"
    assert not {"begin_execution", "stop_execution"} & set(dag.task_ids)


def test_the_run_waits_for_its_log_file_then_fails_naming_it(dag_bag):
    sensor = dag_bag.dags["sparkify_etl"].get_task("wait_for_log_file")
    assert sensor.mode == "reschedule"  # no worker slot held, no triggerer needed
    assert sensor.timeout == timedelta(hours=6).total_seconds()
    assert sensor.key_template == "log_data/%Y/%m/%Y-%m-%d-events.json"
    assert sensor.bucket_name == "{{ var.value.sparkify_s3_bucket }}"


def test_datasets_are_published_only_by_the_checks(dag_bag):
    dag = dag_bag.dags["sparkify_etl"]
    publishers = {t.task_id: sorted(o.name for o in t.outlets) for t in dag.tasks if t.outlets}
    assert publishers == {
        "run_data_quality_checks": ["artists", "songplays", "songs", "time", "users"]
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
    songplays = {
        o.uri for o in etl.get_task("run_data_quality_checks").outlets if o.name == "songplays"
    }
    condition = dag.timetable.dataset_condition
    assert {uri for uri, _ in condition.iter_datasets()} == songplays
    assert songplays == {"astro://redshift@?table=songplays&schema=public"}
    assert dag.catchup is False and dag.doc_md and "sparkify" in dag.tags


def test_dimension_modes_and_staging_inputs(dag_bag):
    dag = dag_bag.dags["sparkify_etl"]
    modes = {t.table: t.mode for t in dag.tasks if t.task_type == "LoadDimensionOperator"}
    # users and time follow corrections of a day: rebuilt from what the intervals hold
    assert modes == {
        "users": "history",
        "songs": "truncate-insert",
        "artists": "truncate-insert",
        "time": "interval-replace",
    }
    events = dag.get_task("stage_events")
    assert events.input_file.path.endswith("/log_data/")
    assert events.key_template == "log_data/%Y/%m/%Y-%m-%d-events.json"
    assert dag.get_task("stage_songs").key_template is None
    assert events.output_table.name == "staging_events"
