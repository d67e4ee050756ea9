"""The star schema's SQL (include/sql/*.sql through the load operators) on real PostgreSQL.

Staging is filled by the PostgreSQL staging path itself (json_copy) from generated files
read off disk, then the fact and dimension operators run for chosen intervals.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dev.sample_data import SampleSpec, generate
from operators.load_dimension import LoadDimensionOperator
from operators.load_fact import LoadFactOperator
from sparkify.json_copy import copy_objects, table_columns
from sparkify.tables import warehouse_table
from tests.stack_support import connect, connection_environment, fresh_database, table_rows

pytestmark = pytest.mark.stack

DB = "sparkify_test_sql"
DAY1, DAY2, DAY3 = (datetime(2018, 11, d, tzinfo=UTC) for d in (1, 2, 3))


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("sql-sample")
    generate(folder, SampleSpec(start=DAY1.date(), days=3, songs=80, seed=11))
    return folder


@pytest.fixture
def warehouse(monkeypatch) -> str:
    fresh_database(DB)
    for name, value in connection_environment(DB).items():
        monkeypatch.setenv(name, value)
    return DB


def day_key(day: datetime) -> str:
    return day.strftime("log_data/%Y/%m/%Y-%m-%d-events.json")


def stage(folder: Path, table: str, keys: list[str]) -> None:
    """Fill a staging table from files on disk with the real COPY path."""
    with connect(DB) as conn, conn.cursor() as cursor:
        cursor.execute(f'TRUNCATE "{table}"')
        columns = table_columns(cursor, "public", table)
        copy_objects(cursor, f'"{table}"', columns, keys, lambda k: (folder / k).open("rb"))
        conn.commit()


def stage_days(folder: Path, *days: datetime) -> None:
    stage(folder, "staging_events", [day_key(d) for d in days])


def stage_all_songs(folder: Path) -> None:
    keys = sorted(p.relative_to(folder).as_posix() for p in (folder / "song_data").rglob("*.json"))
    stage(folder, "staging_songs", keys)


def run(operator, start: datetime, end: datetime) -> int:
    """Render and execute the task as Airflow does; returns the rows the table then holds."""
    context = {"data_interval_start": start, "data_interval_end": end}
    operator.render_template_fields(context)
    loaded = operator.execute(context)
    return len(table_rows(DB, loaded.name, [operator.columns[0]]))


def fact() -> LoadFactOperator:
    return LoadFactOperator(
        task_id="fact", conn_id="redshift", table="songplays", sql="songplays.sql",
        tables={"staging_events": warehouse_table("staging_events"),
                "staging_songs": warehouse_table("staging_songs")},
    )  # fmt: skip


def users(mode: str = "upsert") -> LoadDimensionOperator:
    kwargs = (
        {"key_columns": ["user_id"], "version_column": "last_play_at"} if mode == "upsert" else {}
    )
    return LoadDimensionOperator(
        task_id="users", conn_id="redshift", table="users", sql="users.sql",
        tables={"staging_events": warehouse_table("staging_events")}, mode=mode, **kwargs,
    )  # fmt: skip


def plays(folder: Path, start: datetime, end: datetime) -> dict[tuple, dict]:
    """The distinct NextSong events with start <= ts < end, straight from the files."""
    found = {}
    for path in sorted((folder / "log_data").rglob("*.json")):
        for line in path.read_text(encoding="utf-8").splitlines():
            event = json.loads(line)
            moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=event["ts"])
            if event["page"] == "NextSong" and start <= moment < end:
                found[(event["userId"], event["sessionId"], event["itemInSession"])] = event
    return found


def test_hourly_interval_loads_only_that_hours_plays(sample, warehouse):
    stage_days(sample, DAY2)
    stage_all_songs(sample)
    busiest = max(
        range(24),
        key=lambda h: len(plays(sample, DAY2 + timedelta(hours=h), DAY2 + timedelta(hours=h + 1))),
    )
    start = DAY2 + timedelta(hours=busiest)
    end = start + timedelta(hours=1)
    expected = plays(sample, start, end)
    assert expected, "the sample has no plays in its busiest hour"

    assert run(fact(), start, end) == len(expected)
    rows = table_rows(DB, "songplays", ["start_time", "songplay_id"])
    assert len(rows) == len(expected)
    assert all(start.replace(tzinfo=None) <= row[1] < end.replace(tzinfo=None) for row in rows)


def test_rerunning_an_interval_replaces_it(sample, warehouse):
    stage_days(sample, DAY1)
    stage_all_songs(sample)
    run(fact(), DAY1, DAY2)
    first = table_rows(DB, "songplays", ["songplay_id"])
    run(fact(), DAY1, DAY2)
    assert table_rows(DB, "songplays", ["songplay_id"]) == first
    assert len(first) == len(plays(sample, DAY1, DAY2))


def test_rerun_after_a_bad_load_leaves_the_interval_intact(sample, warehouse):
    """A failing load rolls back: the interval keeps the rows of the last good load."""
    stage_days(sample, DAY1)
    stage_all_songs(sample)
    run(fact(), DAY1, DAY2)
    before = table_rows(DB, "songplays", ["songplay_id"])
    broken = LoadFactOperator(
        task_id="broken", conn_id="redshift", table="songplays",
        sql="SELECT songplay_id, start_time, CAST('x' AS INTEGER) AS user_id, level, song_id, "
        "artist_id, session_id, location, user_agent FROM {{ songplays }}",
        tables={"songplays": warehouse_table("songplays")},
    )  # fmt: skip
    with pytest.raises(Exception, match="invalid input syntax"):
        run(broken, DAY1, DAY2)
    assert table_rows(DB, "songplays", ["songplay_id"]) == before


def test_users_keep_the_level_of_the_latest_play_whatever_the_order(sample, warehouse):
    for day in (DAY3, DAY1, DAY2):  # out of order
        stage_days(sample, day)
        run(users(), day, day + timedelta(days=1))
    latest, first = {}, {}
    for event in sorted(
        plays(sample, DAY1, DAY3 + timedelta(days=1)).values(), key=lambda e: e["ts"]
    ):
        if event["userId"]:
            latest[int(event["userId"])] = event["level"]
            first.setdefault(int(event["userId"]), event["level"])
    assert any(first[u] != latest[u] for u in latest), "no user changes level: weak sample"
    stored = {row[0]: row[4] for row in table_rows(DB, "users", ["user_id"])}
    assert stored == latest


def test_truncate_insert_replaces_the_whole_dimension(sample, warehouse):
    stage_days(sample, DAY1)
    run(users("truncate-insert"), DAY1, DAY2)
    day1 = {row[0] for row in table_rows(DB, "users", ["user_id"])}
    stage_days(sample, DAY2)
    run(users("truncate-insert"), DAY2, DAY3)
    day2 = {row[0] for row in table_rows(DB, "users", ["user_id"])}
    expected = {int(e["userId"]) for e in plays(sample, DAY2, DAY3).values() if e["userId"]}
    assert day2 == expected and day1 != day2


def test_the_same_event_twice_is_one_play(sample, warehouse, tmp_path):
    """Delivered twice, in one file or in two files: one fact row."""
    day_lines = (sample / day_key(DAY1)).read_text(encoding="utf-8").splitlines()
    play_lines = [line for line in day_lines if '"page":"NextSong"' in line.replace(" ", "")]
    assert len(play_lines) >= 20
    doubled = tmp_path / "log_data" / "doubled.json"
    doubled.parent.mkdir(parents=True)
    doubled.write_text("\n".join(day_lines + play_lines[:5]) + "\n", encoding="utf-8")
    again = tmp_path / "log_data" / "again.json"
    again.write_text("\n".join(play_lines[5:20]) + "\n", encoding="utf-8")
    stage(tmp_path, "staging_events", ["log_data/doubled.json", "log_data/again.json"])
    stage_all_songs(sample)

    assert run(fact(), DAY1, DAY2) == len(plays(sample, DAY1, DAY2))
    assert len(table_rows(DB, "songplays", ["songplay_id"])) == len(plays(sample, DAY1, DAY2))
