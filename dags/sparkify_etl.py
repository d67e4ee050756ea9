"""Sparkify's warehouse ETL: S3 JSON -> staging -> star schema -> quality checks."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.decorators import dag
from airflow.models.param import Param
from airflow.operators.empty import EmptyOperator
from astro import sql as aql
from astro.files import File

from operators.data_quality import DataQualityOperator
from operators.load_dimension import LoadDimensionOperator
from operators.load_fact import LoadFactOperator
from operators.run_report import RowCountSnapshotOperator, RunReportOperator
from operators.stage_redshift import StageToRedshiftOperator
from sparkify.alerts import alert_on_failure
from sparkify.checks import default_checks
from sparkify.config import LOG_KEY_TEMPLATE, LOG_PREFIX, SONG_PREFIX, current_target
from sparkify.sql import read_sql
from sparkify.tables import warehouse_table

SQL_DIR = Path(__file__).resolve().parents[1] / "include" / "sql"
TARGET = current_target()

DOC_MD = f"""
### Sparkify ETL (target: `{TARGET.name}`)

Stages the day's event logs and the song metadata from `s3://{TARGET.s3_bucket}` into
`staging_events` / `staging_songs`, loads the fact table `songplays` for the run's data
interval (a re-run replaces the interval), then the dimensions `users`, `songs`,
`artists` and `time`, and runs the data quality suite (results in
`data_quality_results`). One run at a time (`max_active_runs=1`): the staging tables are
shared by runs. Every run, failed or not, ends with a report (rows before and after,
rejects, checks, time per task) in `reports/sparkify_etl/<run_id>.md` and `.html` under
`SPARKIFY_REPORTS_DIR` or `AIRFLOW_HOME`.
"""

default_args = {
    "owner": "sparkify",
    "depends_on_past": False,
    "retries": 3,
    "retry_delay": timedelta(minutes=5),
    "email_on_retry": False,
    "email_on_failure": False,
    # Once the retries are spent: an alert in the task log, reports/alerts.log, a webhook.
    "on_failure_callback": alert_on_failure,
}


@dag(
    dag_id="sparkify_etl",
    start_date=pendulum.datetime(2018, 11, 1, tz="UTC"),
    schedule="@daily",
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    template_searchpath=[str(SQL_DIR)],
    tags=["sparkify", "etl", TARGET.name],
    doc_md=DOC_MD,
    params={"full_reload": Param(False, type="boolean", description="re-read every song file")},
)
def sparkify_etl() -> None:
    begin = EmptyOperator(task_id="begin_execution")
    # Rows per table before anything runs (a table absent on the first run counts None).
    snapshot = RowCountSnapshotOperator(
        task_id="snapshot_row_counts", conn_id=TARGET.warehouse_conn_id, schema=TARGET.schema
    )

    @aql.run_raw_sql(conn_id=TARGET.warehouse_conn_id, task_id="create_tables")
    def create_tables():
        return read_sql("create_tables")

    stage_events = StageToRedshiftOperator(
        task_id="stage_events",
        input_file=File(f"s3://{TARGET.s3_bucket}/{LOG_PREFIX}", conn_id=TARGET.aws_conn_id),
        output_table=warehouse_table("staging_events"),
        dialect=TARGET.dialect,
        key_template=LOG_KEY_TEMPLATE,
        # A few broken lines go to staging_rejects; more than this fails the run.
        max_rejects=100,
    )
    stage_songs = StageToRedshiftOperator(
        task_id="stage_songs",
        input_file=File(f"s3://{TARGET.s3_bucket}/{SONG_PREFIX}", conn_id=TARGET.aws_conn_id),
        output_table=warehouse_table("staging_songs"),
        dialect=TARGET.dialect,
        max_rejects=10,
        # Only new or changed song files are read (by ETag); trigger with
        # {"full_reload": true} to read them all again.
        incremental=TARGET.dialect == "postgres",
        full_reload="{{ params.full_reload }}",
    )
    load_songplays = LoadFactOperator(
        task_id="load_songplays_fact_table",
        conn_id=TARGET.warehouse_conn_id,
        table="songplays",
        sql="songplays.sql",
        schema=TARGET.schema,
        outlets=[warehouse_table("songplays")],
    )
    dimensions = [
        LoadDimensionOperator(
            task_id="load_user_dim_table",
            conn_id=TARGET.warehouse_conn_id,
            table="users",
            sql="users.sql",
            mode="upsert",
            key_columns=["user_id"],
            version_column="last_play_at",
            schema=TARGET.schema,
            outlets=[warehouse_table("users")],
        ),
        LoadDimensionOperator(
            task_id="load_song_dim_table",
            conn_id=TARGET.warehouse_conn_id,
            table="songs",
            sql="songs.sql",
            mode="truncate-insert",
            schema=TARGET.schema,
            outlets=[warehouse_table("songs")],
        ),
        LoadDimensionOperator(
            task_id="load_artist_dim_table",
            conn_id=TARGET.warehouse_conn_id,
            table="artists",
            sql="artists.sql",
            mode="truncate-insert",
            schema=TARGET.schema,
            outlets=[warehouse_table("artists")],
        ),
        LoadDimensionOperator(
            task_id="load_time_dim_table",
            conn_id=TARGET.warehouse_conn_id,
            table="time",
            sql="time.sql",
            mode="upsert",
            key_columns=["start_time"],
            schema=TARGET.schema,
            outlets=[warehouse_table("time")],
        ),
    ]
    quality = DataQualityOperator(
        task_id="run_data_quality_checks",
        conn_id=TARGET.warehouse_conn_id,
        checks=default_checks(TARGET.schema),
        schema=TARGET.schema,
    )
    end = EmptyOperator(task_id="stop_execution")
    # A leaf beside stop_execution: it runs once every task is done, whatever their state
    # (a failed run gets its report too), while stop_execution still needs the checks.
    report = RunReportOperator(
        task_id="write_run_report",
        conn_id=TARGET.warehouse_conn_id,
        schema=TARGET.schema,
        before=snapshot.output,
        trigger_rule="all_done",
    )

    tables = create_tables()
    begin >> snapshot >> tables >> [stage_events, stage_songs] >> load_songplays
    load_songplays >> dimensions >> quality >> [end, report]
    [tables, stage_events, stage_songs, load_songplays, *dimensions] >> report


sparkify_etl()
