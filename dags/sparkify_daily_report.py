"""Sparkify's daily report: top songs and active users by level, after each songplays load."""

# No `from __future__ import annotations` here: aql.dataframe reads the parameters'
# annotations at run time, and turns a Table argument into a DataFrame only when the
# annotation is the class pd.DataFrame itself, not the string "pd.DataFrame".
import logging
from datetime import timedelta
from typing import Any

import pandas as pd
import pendulum
from airflow.decorators import dag
from astro import sql as aql
from astro.table import Table

from sparkify.alerts import alert_on_failure
from sparkify.config import SCHEMA
from sparkify.report_format import md_code
from sparkify.report_store import (
    REPORTS_URL_VARIABLE,
    STORAGE_CONN_ID,
    configured_reports_url,
    join_url,
    write_text,
)
from sparkify.sql import read_sql
from sparkify.tables import warehouse_table

DAG_ID = "sparkify_daily_report"
# The same Dataset the ETL's load_songplays_fact_table lists as its outlet.
SONGPLAYS = warehouse_table("songplays")
# The queries are include/sql/report_top_songs.sql and report_users_by_level.sql; Astro SDK
# renders {{ songplays }} (a Table argument) as the table's qualified name. "The day" is
# the latest day with plays: loads may arrive in any order, the report always covers the
# newest day the warehouse holds.
TOP_SONGS = 10  # the LIMIT of report_top_songs.sql

DOC_MD = f"""
### Sparkify daily report

Runs whenever `sparkify_etl` has loaded `songplays` (a Dataset schedule on
`{SONGPLAYS.uri}`). For the latest day with plays it builds, with Astro SDK
`aql.transform`, two tables in schema `{SCHEMA}` (named explicitly, so nothing
goes to astro's default `tmp_astro` schema; each run replaces them):

- `report_top_songs`: the {TOP_SONGS} most played known songs (plays, distinct listeners);
- `report_users_by_level`: active users and plays per level (level at play time).

`write_daily_report` (`aql.dataframe`) then writes them as Markdown to
`<{REPORTS_URL_VARIABLE}>/{DAG_ID}/<day>.md` (the Airflow Variable, e.g.
`s3://<bucket>/reports`), through the connection `{STORAGE_CONN_ID}`.
"""

default_args = {
    "owner": "sparkify",
    "depends_on_past": False,
    "retries": 2,
    "retry_delay": timedelta(minutes=5),
    "email_on_retry": False,
    "email_on_failure": False,
    "on_failure_callback": alert_on_failure,
}

log = logging.getLogger(__name__)


def _day(*frames: pd.DataFrame) -> str | None:
    for frame in frames:
        if not frame.empty and frame["day"].notna().any():
            return str(frame["day"].dropna().iloc[0])[:10]
    return None


def _cell(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def daily_report_markdown(top_songs: pd.DataFrame, users_by_level: pd.DataFrame) -> str:
    """The day's report as Markdown, from the two transforms' tables."""
    day = _day(top_songs, users_by_level)
    if day is None:
        return "# Sparkify daily report\n\nNo plays in `songplays` yet.\n"
    lines = [f"# Sparkify daily report: {day}", "", "## Top songs", ""]
    if top_songs.empty:
        lines.append("No play of a known song that day.")
    else:
        lines += ["| # | song | artist | plays | listeners |", "|---:|---|---|---:|---:|"]
        for row in top_songs.sort_values("song_rank").itertuples(index=False):
            lines.append(
                f"| {row.song_rank} | {md_code(_cell(row.title))} | {md_code(_cell(row.artist))} "
                f"| {row.plays:,} | {row.listeners:,} |"
            )
    lines += ["", "## Active users by level", ""]
    lines += ["| level | active users | plays |", "|---|---:|---:|"]
    for row in users_by_level.sort_values("level", na_position="last").itertuples(index=False):
        lines.append(
            f"| {md_code(_cell(row.level) or 'unknown')} | {row.active_users:,} | {row.plays:,} |"
        )
    plays = int(users_by_level["plays"].sum()) if not users_by_level.empty else 0
    lines += ["", f"{plays:,} plays that day; a user who changed level counts in both levels."]
    return "\n".join(lines) + "\n"


def write_daily_markdown(top_songs: pd.DataFrame, users_by_level: pd.DataFrame) -> str:
    """Write the day's Markdown to ``<sparkify_reports_url>/<dag_id>/<day>.md``; its URL."""
    reports_url = configured_reports_url()
    if not reports_url:
        raise ValueError(
            f"the Airflow Variable {REPORTS_URL_VARIABLE!r} is not set: say where reports go, "
            "e.g. s3://<bucket>/reports"
        )
    name = _day(top_songs, users_by_level) or "no-plays"
    url = write_text(
        join_url(reports_url, DAG_ID, name) + ".md",
        daily_report_markdown(top_songs, users_by_level),
        STORAGE_CONN_ID,
    )
    log.info("Daily report: %s", url)
    return url


@dag(
    dag_id=DAG_ID,
    start_date=pendulum.datetime(2018, 11, 1, tz="UTC"),
    schedule=[SONGPLAYS],
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    tags=["sparkify", "report"],
    doc_md=DOC_MD,
)
def sparkify_daily_report() -> None:
    @aql.transform(task_id="top_songs")
    def top_songs(songplays: Table, songs: Table, artists: Table) -> str:
        return read_sql("report_top_songs")

    @aql.transform(task_id="users_by_level")
    def users_by_level(songplays: Table) -> str:
        return read_sql("report_users_by_level")

    @aql.dataframe(task_id="write_daily_report")
    def write_daily_report(top_songs: pd.DataFrame, users_by_level: pd.DataFrame) -> str:
        return write_daily_markdown(top_songs, users_by_level)

    write_daily_report(
        top_songs(
            songplays=SONGPLAYS,
            songs=warehouse_table("songs"),
            artists=warehouse_table("artists"),
            output_table=warehouse_table("report_top_songs"),
        ),
        users_by_level(songplays=SONGPLAYS, output_table=warehouse_table("report_users_by_level")),
    )


sparkify_daily_report()
