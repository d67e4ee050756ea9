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
    assert downstream == {
        "begin_execution": ["create_tables"],
        "create_tables": ["stage_events", "stage_songs"],
        "stage_events": ["load_songplays_fact_table"],
        "stage_songs": ["load_songplays_fact_table"],
        "load_songplays_fact_table": dimensions,
        **{task_id: ["run_data_quality_checks"] for task_id in dimensions},
        "run_data_quality_checks": ["stop_execution"],
        "stop_execution": [],
    }


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
