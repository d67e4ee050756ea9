"""Sparkify's warehouse ETL: S3 JSON -> staging -> star schema -> quality checks.

Astro SDK shape: ``load_file`` tasks (``StageToRedshiftOperator``) turn the S3 ``File``s
into staging ``Table``s; ``run_raw_sql`` tasks (``LoadFactOperator``,
``LoadDimensionOperator``) take those Tables as arguments and return the tables they
load; the quality checks take the star schema's Tables. Dependencies come from the
Tables passed, apart from the setup at the start: count rows, create tables, wait for
the day's log file.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.decorators import dag
from airflow.models.param import Param
from astro import sql as aql
from astro.files import File

from operators.data_quality import DataQualityOperator
from operators.load_dimension import LoadDimensionOperator
from operators.load_fact import LoadFactOperator
from operators.log_files_sensor import LogFilesSensor
from operators.run_report import RowCountSnapshotOperator, RunReportOperator
from operators.stage_redshift import StageToRedshiftOperator
from sparkify.alerts import alert_on_failure
from sparkify.checks import STAR_TABLES, default_checks
from sparkify.config import (
    AWS_CONN_ID,
    BUCKET_VARIABLE,
    IAM_ROLE_VARIABLE,
    LOG_KEY_TEMPLATE,
    LOG_PREFIX,
    REPORTS_URL_VARIABLE,
    SONG_PREFIX,
    WAREHOUSE_CONN_ID,
    variable_template,
)
from sparkify.sql import read_sql
from sparkify.tables import warehouse_table

BUCKET = variable_template(BUCKET_VARIABLE)
IAM_ROLE = variable_template(IAM_ROLE_VARIABLE, default="")
# How long a run waits for its day's log file before failing with the file's URL.
LOG_WAIT_TIMEOUT = timedelta(hours=6)
# Runs of different intervals run at once (a month of daily runs in one wave, or the 24
# runs of an hourly day): each stages its own rows and the shared tables are written
# under locks. What truly runs in parallel is bounded by the workers' slots (Airflow's
# parallelism and the pools), and the warehouse serializes the writes of one table.
MAX_ACTIVE_RUNS = 32

DOC_MD = """
### Sparkify ETL

Waits for the run's daily log file in `s3://<sparkify_s3_bucket>/log_data/`, stages it and
the song metadata into `staging_events` / `staging_songs` (astro `load_file`), loads the
fact table `songplays` for the run's data interval (a re-run replaces the interval) and
the dimensions `users`, `songs`, `artists` and `time` (astro `run_raw_sql`), then runs
the data quality suite (results in `data_quality_results`); only a run whose checks all
pass publishes the star schema's Datasets. Every run, failed or not, ends with a report
(rows before and after, rejects, checks, time per task) written under the Variable
`sparkify_reports_url`. Connections: `redshift` (the warehouse; its conn type picks the
dialect) and `aws-redshift` (S3). Up to 32 runs at once (`max_active_runs`), so a
backfill runs its intervals in parallel: each run stages and reads only its own rows of
`staging_events`, and the tables every run writes (the dimensions, `users_history`, the
song mirror and its manifest) are written under a table lock, one run after another.
"""

default_args = {
    "owner": "sparkify",
    "depends_on_past": False,
    "retries": 3,
    "retry_delay": timedelta(minutes=5),
    "email_on_retry": False,
    "email_on_failure": False,
    # Once the retries are spent: an alert in the task log, next to the reports, a webhook.
    "on_failure_callback": alert_on_failure,
}


@dag(
    dag_id="sparkify_etl",
    start_date=pendulum.datetime(2018, 11, 1, tz="UTC"),
    schedule="@daily",
    catchup=False,
    max_active_runs=MAX_ACTIVE_RUNS,
    default_args=default_args,
    tags=["sparkify", "etl"],
    doc_md=DOC_MD,
    params={"full_reload": Param(False, type="boolean", description="re-read every song file")},
)
def sparkify_etl() -> None:
    # Rows per table before anything runs (a table absent on the first run counts None):
    # the setup of the run report, which tears the run down whatever its outcome.
    snapshot = RowCountSnapshotOperator(task_id="snapshot_row_counts", conn_id=WAREHOUSE_CONN_ID)

    # One at a time across runs: PostgreSQL's CREATE TABLE IF NOT EXISTS is not safe
    # against itself (two sessions creating one table: a duplicate-key error).
    @aql.run_raw_sql(conn_id=WAREHOUSE_CONN_ID, task_id="create_tables", max_active_tis_per_dag=1)
    def create_tables():
        return read_sql("create_tables")

    wait_for_logs = LogFilesSensor(
        task_id="wait_for_log_file",
        bucket_name=BUCKET,
        key_template=LOG_KEY_TEMPLATE,
        aws_conn_id=AWS_CONN_ID,
        timeout=LOG_WAIT_TIMEOUT,
    )
    stage_events = StageToRedshiftOperator(
        task_id="stage_events",
        input_file=File(f"s3://{BUCKET}/{LOG_PREFIX}", conn_id=AWS_CONN_ID),
        output_table=warehouse_table("staging_events"),
        key_template=LOG_KEY_TEMPLATE,
        # A few broken lines go to staging_rejects; more than this fails the run.
        max_rejects=100,
        iam_role=IAM_ROLE,
    )
    stage_songs = StageToRedshiftOperator(
        task_id="stage_songs",
        input_file=File(f"s3://{BUCKET}/{SONG_PREFIX}", conn_id=AWS_CONN_ID),
        output_table=warehouse_table("staging_songs"),
        max_rejects=10,
        # Only new or changed song files are read (by ETag); trigger with
        # {"full_reload": true} to read them all again.
        incremental=True,
        full_reload="{{ params.full_reload }}",
        iam_role=IAM_ROLE,
    )
    staging_events, staging_songs = stage_events.output, stage_songs.output

    songplays = LoadFactOperator(
        task_id="load_songplays_fact_table",
        conn_id=WAREHOUSE_CONN_ID,
        table="songplays",
        sql="songplays.sql",
        tables={"staging_events": staging_events, "staging_songs": staging_songs},
    ).output
    users = LoadDimensionOperator(
        task_id="load_user_dim_table",
        conn_id=WAREHOUSE_CONN_ID,
        table="users",
        # Each user's latest play of the interval replaces the interval in users_history;
        # users is then rebuilt from the latest history row per user, so a re-run with
        # plays removed or levels changed leaves it as one pass would (an upsert keeps the
        # removed plays' levels and users).
        sql="users_history.sql",
        tables={"staging_events": staging_events},
        mode="history",
        history_table="users_history",
        interval_column="last_play_at",
        rebuild_sql="users.sql",
    ).output
    songs = LoadDimensionOperator(
        task_id="load_song_dim_table",
        conn_id=WAREHOUSE_CONN_ID,
        table="songs",
        sql="songs.sql",
        tables={"staging_songs": staging_songs},
        mode="truncate-insert",
    ).output
    artists = LoadDimensionOperator(
        task_id="load_artist_dim_table",
        conn_id=WAREHOUSE_CONN_ID,
        table="artists",
        sql="artists.sql",
        tables={"staging_songs": staging_songs},
        mode="truncate-insert",
    ).output
    time = LoadDimensionOperator(
        task_id="load_time_dim_table",
        conn_id=WAREHOUSE_CONN_ID,
        table="time",
        sql="time.sql",
        tables={"songplays": songplays},
        # The interval's start times replace the interval's rows, as the fact's plays do
        # (an upsert would keep the start times of removed plays).
        mode="interval-replace",
        interval_column="start_time",
    ).output
    quality = DataQualityOperator(
        task_id="run_data_quality_checks",
        conn_id=WAREHOUSE_CONN_ID,
        checks=default_checks(),
        tables=[songplays, users, songs, artists, time],
        # The Datasets other DAGs schedule on: emitted only when every check passed.
        outlets=[warehouse_table(name) for name in STAR_TABLES],
    )
    report = RunReportOperator(
        task_id="write_run_report",
        conn_id=WAREHOUSE_CONN_ID,
        reports_url=variable_template(REPORTS_URL_VARIABLE),
        storage_conn_id=AWS_CONN_ID,
        before=snapshot.output,
    )

    # The sensor needs no table: it waits while the tables are created (one level less
    # for every run to pass through, one scheduling pass less for a backfill).
    tables = create_tables()
    snapshot >> [tables, wait_for_logs]
    tables >> [stage_songs, stage_events]
    wait_for_logs >> stage_events
    quality >> report.as_teardown(setups=snapshot)


sparkify_etl()
