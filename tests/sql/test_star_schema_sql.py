"""The star schema's SQL (include/sql/*.sql through the load operators) on real PostgreSQL.

Staging is filled by the PostgreSQL staging path itself (json_copy) from generated files
read off disk, then the fact and dimension operators run for chosen intervals.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dev.sample_data import SampleSpec, generate
from operators.load_dimension import LoadDimensionOperator
from operators.load_fact import LoadFactOperator
from sparkify.json_copy import copy_objects
from sparkify.staging_tables import (
    RUN_COLUMN,
    STAGED_AT_COLUMN,
    is_run_partitioned,
    table_columns,
    utc_now,
)
from sparkify.tables import warehouse_table
from tests.stack_support import connect, connection_environment, fresh_database, table_rows

pytestmark = pytest.mark.stack

DB = "sparkify_test_sql"
# The run these tests load as: staging_events rows carry it, the loads read only its rows.
RUN_ID = "manual__sql-tests"
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
        constants = {}
        if is_run_partitioned(columns):
            constants = {RUN_COLUMN: RUN_ID, STAGED_AT_COLUMN: utc_now()}
        copy_objects(
            cursor, f'"{table}"', columns, keys, lambda k: (folder / k).open("rb"),
            constants=constants,
        )  # fmt: skip
        conn.commit()


def stage_days(folder: Path, *days: datetime) -> None:
    stage(folder, "staging_events", [day_key(d) for d in days])


def stage_all_songs(folder: Path) -> None:
    keys = sorted(p.relative_to(folder).as_posix() for p in (folder / "song_data").rglob("*.json"))
    stage(folder, "staging_songs", keys)


def run(operator, start: datetime, end: datetime) -> int:
    """Render and execute the task as Airflow does; returns the rows the table then holds."""
    context = {"data_interval_start": start, "data_interval_end": end, "run_id": RUN_ID}
    operator.render_template_fields(context)
    loaded = operator.execute(context)
    return len(table_rows(DB, loaded.name, [operator.columns[0]]))


def fact() -> LoadFactOperator:
    return LoadFactOperator(
        task_id="fact", conn_id="redshift", table="songplays", sql="songplays.sql",
        tables={"staging_events": warehouse_table("staging_events"),
                "staging_songs": warehouse_table("staging_songs")},
    )  # fmt: skip


USERS_MODES = {
    "upsert": {"key_columns": ["user_id"], "version_column": "last_play_at"},
    "truncate-insert": {},
    "history": {"history_table": "users_history", "interval_column": "last_play_at",
                "rebuild_sql": "users.sql"},
}  # fmt: skip
TIME_MODES = {
    "upsert": {"key_columns": ["start_time"]},
    "interval-replace": {"interval_column": "start_time"},
}


def users(mode: str = "upsert") -> LoadDimensionOperator:
    return LoadDimensionOperator(
        task_id="users", conn_id="redshift", table="users", sql="users_history.sql",
        tables={"staging_events": warehouse_table("staging_events")}, mode=mode,
        **USERS_MODES[mode],
    )  # fmt: skip


def time_dimension(mode: str = "interval-replace") -> LoadDimensionOperator:
    return LoadDimensionOperator(
        task_id="time", conn_id="redshift", table="time", sql="time.sql",
        tables={"songplays": warehouse_table("songplays")}, mode=mode, **TIME_MODES[mode],
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


def test_another_runs_staged_rows_stay_out_of_the_runs_loads(sample, warehouse):
    # Runs overlap: another run's rows of the same day (here with other play identities
    # and levels) sit in staging_events; the fact and users loads read this run's only.
    stage_days(sample, DAY1)
    stage_all_songs(sample)
    with connect(DB) as conn, conn.cursor() as cursor:
        cursor.execute(
            "INSERT INTO staging_events (artist, auth, firstname, gender, iteminsession, "
            "lastname, length, level, location, method, page, registration, sessionid, song, "
            "status, ts, useragent, userid, source_key, run_id, staged_at) "
            "SELECT artist, auth, firstname, gender, iteminsession + 100000, lastname, length, "
            "'other', location, method, page, registration, sessionid, song, status, ts + 1, "
            "useragent, userid, source_key, 'scheduled__other-run', staged_at "
            "FROM staging_events WHERE run_id = %s",
            (RUN_ID,),
        )
        conn.commit()

    assert run(fact(), DAY1, DAY2) == len(plays(sample, DAY1, DAY2))
    run(users("history"), DAY1, DAY2)
    with connect(DB) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT level FROM users UNION SELECT level FROM songplays")
        assert {level for (level,) in cursor.fetchall()} <= {"free", "paid"}


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


# ----------------------------------------------------------------------- corrected data


def day_events(folder: Path, day: datetime) -> list[dict]:
    return [json.loads(line) for line in (folder / day_key(day)).read_text("utf-8").splitlines()]


def play_order(event: dict) -> tuple:
    """The order of a user's plays, as users_history.sql ranks them."""
    return (event["ts"], event["sessionId"], event["itemInSession"])


def plan_correction(folder: Path, days: list[datetime], day: datetime) -> dict[str, str]:
    """Users a correction of ``day``'s file must change, chosen from the files.

    ``stale``: their latest play of all is on ``day`` and an earlier day's latest is at
    another level (their plays of ``day`` are removed: that earlier play is theirs again);
    ``gone``: they play on ``day`` only (removed: no row is left); ``flipped``: their
    latest play is on ``day`` (their level that day is flipped).
    """
    plays_of = {d: [e for e in day_events(folder, d) if e["page"] == "NextSong" and e["userId"]]
                for d in days}  # fmt: skip
    latest: dict[str, tuple[datetime, dict]] = {}
    for d in days:
        for event in plays_of[d]:
            user = event["userId"]
            if user not in latest or play_order(event) > play_order(latest[user][1]):
                latest[user] = (d, event)
    on_day = sorted((u for u, (d, _) in latest.items() if d == day), key=int)
    earlier = [d for d in days if d < day]

    def earlier_level(user: str) -> str | None:
        played = [e for d in earlier for e in plays_of[d] if e["userId"] == user]
        return max(played, key=play_order)["level"] if played else None

    stale = [u for u in on_day if earlier_level(u) not in (None, latest[u][1]["level"])]
    elsewhere = {e["userId"] for d in days if d != day for e in plays_of[d]}
    gone = [u for u in on_day if u not in elsewhere]
    assert stale and gone and len(on_day) >= 3, "the sample lacks the users a correction needs"
    flipped = next(u for u in on_day if u not in (stale[0], gone[0]))
    return {"stale": stale[0], "gone": gone[0], "flipped": flipped}


def write_corrected_day(folder: Path, target: Path, day: datetime, plan: dict[str, str]) -> None:
    """``folder``'s log files under ``target``, ``day``'s corrected: the plays of the stale
    and gone users removed, every 10th other play removed, the flipped user's level flipped."""
    for path in (folder / "log_data").rglob("*.json"):
        copy = target / path.relative_to(folder)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, copy)
    lines, plays_seen = [], 0
    for event in day_events(folder, day):
        if event["page"] == "NextSong":
            plays_seen += 1
            if event["userId"] in (plan["stale"], plan["gone"]) or plays_seen % 10 == 0:
                continue
        if event["userId"] == plan["flipped"]:
            event["level"] = {"free": "paid", "paid": "free"}[event["level"]]
        lines.append(json.dumps(event))
    (target / day_key(day)).write_text("\n".join(lines) + "\n", encoding="utf-8")


def expected_users(folder: Path, start: datetime, end: datetime) -> dict[int, tuple]:
    """user_id -> (first name, last name, gender, level, last play) of the latest play."""
    latest: dict[str, dict] = {}
    for event in plays(folder, start, end).values():
        user = event["userId"]
        if user and (user not in latest or play_order(event) > play_order(latest[user])):
            latest[user] = event
    epoch = datetime(1970, 1, 1)
    return {
        int(u): (e["firstName"], e["lastName"], e["gender"], e["level"],
                 epoch + timedelta(milliseconds=e["ts"]))
        for u, e in latest.items()
    }  # fmt: skip


def load_day(folder: Path, day: datetime, users_mode: str, time_mode: str) -> None:
    stage_days(folder, day)
    end = day + timedelta(days=1)
    run(fact(), day, end)
    run(time_dimension(time_mode), day, end)
    run(users(users_mode), day, end)


@pytest.mark.parametrize(
    ("users_mode", "time_mode"), [("history", "interval-replace"), ("upsert", "upsert")]
)
def test_a_rerun_with_corrected_data_equals_one_pass_over_the_corrected_files(
    sample, warehouse, tmp_path, users_mode, time_mode
):
    """Load days 1-3, correct day 2's file (plays removed, a level changed), re-run day 2:
    users and time then hold what the corrected files say. The upsert modes (before)
    keep what the removed plays left; the DAG's modes (now) do not."""
    days = [DAY1, DAY2, DAY3]
    plan = plan_correction(sample, days, DAY2)
    corrected = tmp_path / "corrected"
    write_corrected_day(sample, corrected, DAY2, plan)
    stage_all_songs(sample)
    for day in (DAY3, DAY1, DAY2):  # out of order, then the correction
        load_day(sample, day, users_mode, time_mode)
    load_day(corrected, DAY2, users_mode, time_mode)

    end = DAY3 + timedelta(days=1)
    want_users = expected_users(corrected, DAY1, end)
    epoch = datetime(1970, 1, 1)
    want_times = sorted({epoch + timedelta(milliseconds=e["ts"])
                         for e in plays(corrected, DAY1, end).values()})  # fmt: skip
    got_users = {row[0]: row[1:] for row in table_rows(DB, "users", ["user_id"])}
    got_times = [row[0] for row in table_rows(DB, "time", ["start_time"])]
    assert len(table_rows(DB, "songplays", ["songplay_id"])) == len(plays(corrected, DAY1, end))
    stale, gone, flipped = (int(plan[k]) for k in ("stale", "gone", "flipped"))
    assert got_users[flipped] == want_users[flipped]  # both modes see a changed level
    if users_mode == "history":
        assert got_users == want_users
        assert got_times == want_times
        # users_history holds each user's latest play per day: days 1-3, corrected
        history = table_rows(DB, "users_history", ["user_id", "last_play_at"])
        assert max(row[5] for row in history if row[0] == stale) < DAY2.replace(tzinfo=None)
        assert gone not in {row[0] for row in history}
    else:  # before: the stale level, the gone user and the removed start times stay
        assert got_users[stale] != want_users[stale]
        assert got_users[stale][3] != want_users[stale][3]
        assert gone in got_users and gone not in want_users
        assert set(got_times) > set(want_times)


def test_history_loaded_by_hour_equals_history_loaded_by_day(sample, warehouse):
    stage_days(sample, DAY2)
    for hour in range(24):
        start = DAY2 + timedelta(hours=hour)
        run(users("history"), start, start + timedelta(hours=1))
    by_hour = table_rows(DB, "users", ["user_id"])
    run(users("history"), DAY2, DAY3)
    assert table_rows(DB, "users", ["user_id"]) == by_hour
    assert {row[0]: row[1:] for row in by_hour} == expected_users(sample, DAY2, DAY3)
