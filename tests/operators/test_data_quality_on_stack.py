"""DataQualityOperator with the default suite on real PostgreSQL: a sound warehouse passes,
a broken one fails with one message naming every failed check, the interval's checks fail
for the interval they are about, and results are recorded once per attempt."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from airflow.exceptions import AirflowFailException

from operators.data_quality import DataQualityOperator
from sparkify.checks import default_checks
from tests.stack_support import connect, connection_environment, fresh_database, table_rows

pytestmark = pytest.mark.stack

DB = "sparkify_test_quality"
DAY = datetime(2018, 11, 1, tzinfo=UTC)
T0, T1, T2 = (datetime(2018, 11, 1, *hm) for hm in ((9, 0), (10, 0), (11, 30)))
KEY = "log_data/2018/11/2018-11-01-events.json"
# The staging load's table of plays per object and hour (its change adds it to the DDL):
# created here from the agreed DDL while a database may still lack it.
STAGING_COUNTS_DDL = """
CREATE TABLE IF NOT EXISTS staging_counts (
    table_name  VARCHAR(256) NOT NULL,
    source_key  VARCHAR(1024) NOT NULL,
    hour_start  TIMESTAMP NOT NULL,
    plays       INTEGER NOT NULL,
    run_id      VARCHAR(256) NOT NULL,
    counted_at  TIMESTAMP NOT NULL
)
"""


def ensure_staging_counts(database: str) -> None:
    """Create ``staging_counts`` from the agreed DDL when the database lacks it."""
    with connect(database) as conn, conn.cursor() as cursor:
        cursor.execute(STAGING_COUNTS_DDL)
        conn.commit()


def context(start=DAY, end=DAY + timedelta(days=1), run_id="dq", try_number=1) -> dict:
    return {
        "data_interval_start": start, "data_interval_end": end, "run_id": run_id,
        "ti": SimpleNamespace(try_number=try_number),
    }  # fmt: skip


CONTEXT = context()


def execute(sql: str, parameters=None) -> None:
    with connect(DB) as conn, conn.cursor() as cursor:
        cursor.execute(sql, parameters)
        conn.commit()


@pytest.fixture
def warehouse(monkeypatch):
    fresh_database(DB)
    ensure_staging_counts(DB)
    for name, value in connection_environment(DB).items():
        monkeypatch.setenv(name, value)
    with connect(DB) as conn, conn.cursor() as cursor:
        # What run dq staged (each run reads its own rows of staging_events).
        cursor.execute(
            "INSERT INTO staging_events "
            "(page, ts, userid, sessionid, iteminsession, level, run_id, staged_at) VALUES "
            "('NextSong', 1541066400000, '1', 5, 0, 'free', 'dq', now()), "
            "('NextSong', 1541071800000, '2', 6, 0, 'paid', 'dq', now()), "
            "('Home', 1541071800001, '', 7, 0, 'free', 'dq', now())"
        )
        # What staging counted for run dq: one play at 10:00 and one at 11:30, and another
        # run's count for the same hour that this run's checks must not add.
        cursor.execute(
            "INSERT INTO staging_counts VALUES "
            "('staging_events', %s, '2018-11-01 10:00', 1, 'dq', now()), "
            "('staging_events', %s, '2018-11-01 11:00', 1, 'dq', now()), "
            "('staging_events', 'log_data/other.json', '2018-11-01 10:00', 7, 'other', now())",
            (KEY, KEY),
        )
        cursor.execute(
            "INSERT INTO users VALUES "
            "(1, 'A', 'B', 'F', 'free', %s), (2, 'C', 'D', 'M', 'paid', %s)",
            (T1, T2),
        )
        cursor.execute("INSERT INTO songs VALUES ('SO1', 'T', 'AR1', NULL, 200.5)")
        cursor.execute("INSERT INTO artists VALUES ('AR1', 'N', NULL, NULL, NULL)")
        cursor.execute(
            "INSERT INTO time VALUES (%s, 10, 1, 44, 11, 2018, 4), (%s, 11, 1, 44, 11, 2018, 4)",
            (T1, T2),
        )
        cursor.execute(
            "INSERT INTO songplays VALUES ('a', %s, 1, 'free', 'SO1', 'AR1', 5, 'X', 'UA'), "
            "('b', %s, 2, 'paid', NULL, NULL, 6, 'Y', 'UA')",
            (T1, T2),
        )
        conn.commit()
    return DB


def quality() -> DataQualityOperator:
    return DataQualityOperator(task_id="dq", conn_id="redshift", checks=default_checks())


def failed_checks(run_context: dict) -> dict[str, str]:
    """Failed check -> its result line, from the one failure the checks raise."""
    with pytest.raises(AirflowFailException) as failure:
        quality().execute(run_context)
    lines = str(failure.value).splitlines()[1:]
    return {line.split(": ", 2)[1].split(" on ")[0]: line.removeprefix("- ") for line in lines}


def test_a_sound_warehouse_passes_every_check_and_records_them(warehouse):
    results = quality().execute(CONTEXT)
    assert len(results) == len(default_checks())
    stored = table_rows(DB, "data_quality_results", ["check_name"])
    assert len(stored) == len(results) and all(row[3] for row in stored)
    assert {(row[0], row[7]) for row in stored} == {("dq", 1)}
    staged = {r["name"]: r for r in results}["songplays_match_staged_plays"]
    assert (staged["observed"], staged["expected"]) == ("2", "== 2")


def test_a_broken_warehouse_fails_naming_every_failed_check(warehouse):
    execute("INSERT INTO songplays VALUES ('c', %s, 99, 'gold', 'SO404', NULL, 6, 'Z', 'U')", (T2,))
    execute("UPDATE time SET hour = 25 WHERE hour = 11")
    execute("DELETE FROM artists")
    with pytest.raises(AirflowFailException) as failure:
        quality().execute(CONTEXT)
    message = str(failure.value)
    failed = sorted(line.split(": ", 2)[1].split(" on ")[0] for line in message.splitlines()[1:])
    assert failed == [
        "artists_has_rows",
        "songplays_artist_id_in_artists",
        "songplays_level_accepted",
        "songplays_match_staged_plays",
        "songplays_song_id_in_songs",
        "songplays_user_id_in_users",
        "time_hour_in_range",
    ]
    assert message.startswith(f"7 of {len(default_checks())} data quality checks failed:")
    assert "FAILED: songplays_match_staged_plays on songplays: observed 3, expected == 2" in message
    assert "FAILED: artists_has_rows on artists: observed 0, expected >= 1" in message
    stored = {row[1]: row[3] for row in table_rows(DB, "data_quality_results", ["check_name"])}
    assert sorted(name for name, passed in stored.items() if not passed) == failed


def test_a_day_that_loads_no_plays_fails_though_the_tables_hold_earlier_days(warehouse):
    """Before: the row counts looked at whole tables, so day 2 passed on day 1's rows."""
    day2 = DAY + timedelta(days=1)
    execute("DELETE FROM staging_counts")
    execute(
        "INSERT INTO staging_counts VALUES "
        "('staging_events', 'log_data/2018/11/2018-11-02-events.json', '2018-11-02 08:00', 3, "
        "'day2', now())"
    )
    execute("UPDATE staging_events SET ts = ts + 86400000, run_id = 'day2'")  # day 2's file
    failed = failed_checks(context(day2, day2 + timedelta(days=1), run_id="day2"))
    assert failed == {
        "songplays_has_rows": "FAILED: songplays_has_rows on songplays: observed 0, expected >= 1",
        "time_has_rows": "FAILED: time_has_rows on time: observed 0, expected >= 1",
        "songplays_match_staged_plays":
            "FAILED: songplays_match_staged_plays on songplays: observed 0, expected == 3",
    }  # fmt: skip


def test_staged_plays_are_compared_per_hour_for_an_hourly_run(warehouse):
    ten = DAY + timedelta(hours=10)
    assert quality().execute(context(ten, ten + timedelta(hours=1)))
    # the fact lost the hour's play: what staging counted for the hour disagrees
    execute("DELETE FROM songplays WHERE songplay_id = 'a'")
    execute("DELETE FROM users WHERE user_id = 1")
    failed = failed_checks(context(ten, ten + timedelta(hours=1)))
    assert failed["songplays_match_staged_plays"].endswith("observed 0, expected == 1")
    # the next hour, whose play is there, still passes
    assert quality().execute(context(ten + timedelta(hours=1), ten + timedelta(hours=2)))


def test_a_staged_play_outside_the_days_of_the_log_files_fails(warehouse):
    # Another run's play outside this run's days is not this run's to check.
    execute(
        "INSERT INTO staging_events (page, ts, userid, sessionid, iteminsession, level, run_id, "
        "staged_at) VALUES ('NextSong', 1540944000000, '1', 3, 0, 'free', 'other', now())"
    )
    assert quality().execute(CONTEXT)
    # 2018-10-31 23:59:59: in the day-1 file, but of no interval that file is loaded for
    execute(
        "INSERT INTO staging_events (page, ts, userid, sessionid, iteminsession, level, run_id, "
        "staged_at) VALUES ('NextSong', 1541030399000, '1', 4, 9, 'free', 'dq', now()), "
        "('Home', 1541030399000, '1', 4, 8, 'free', 'dq', now())"
    )
    failed = failed_checks(CONTEXT)
    assert failed == {
        "staged_plays_within_log_days":
            "FAILED: staged_plays_within_log_days on staging_events: observed 1, expected == 0"
    }  # fmt: skip
    # an hourly run of the day bounds by the whole day, as its log file does
    assert "staged_plays_within_log_days" in failed_checks(
        context(DAY + timedelta(hours=10), DAY + timedelta(hours=11))
    )


def test_time_and_users_that_disagree_with_songplays_fail(warehouse):
    """What an upsert leaves after a re-run removed plays: the removed play's start time
    in time, and a user still at the level and time of the removed play."""
    execute("INSERT INTO time VALUES ('2018-11-01 12:00', 12, 1, 44, 11, 2018, 4)")
    execute("UPDATE users SET level = 'paid', last_play_at = '2018-11-01 12:00' WHERE user_id = 1")
    failed = failed_checks(CONTEXT)
    assert failed == {
        "time_matches_songplays":
            "FAILED: time_matches_songplays on time: observed 3, expected == 2",
        "users_level_of_latest_play":
            "FAILED: users_level_of_latest_play on users: observed 1, expected == 0",
    }  # fmt: skip
    # and a user whose stored play is older than one the interval loaded
    execute("UPDATE users SET level = 'free', last_play_at = %s WHERE user_id = 1", (T0,))
    execute("UPDATE time SET start_time = %s, hour = 9 WHERE hour = 12", (T0,))
    execute("INSERT INTO songplays VALUES ('z', %s, 1, 'free', NULL, NULL, 4, 'X', 'UA')", (T0,))
    assert failed_checks(CONTEXT) == {
        "songplays_match_staged_plays":
            "FAILED: songplays_match_staged_plays on songplays: observed 3, expected == 2",
        "users_level_of_latest_play":
            "FAILED: users_level_of_latest_play on users: observed 1, expected == 0",
    }  # fmt: skip


def test_results_are_recorded_once_per_attempt(warehouse):
    quality().execute(context(try_number=1))
    quality().execute(context(try_number=1))  # the same attempt again: replaces
    execute("DELETE FROM songplays WHERE songplay_id = 'b'")
    failed_checks(context(try_number=2))
    rows = table_rows(DB, "data_quality_results", ["try_number", "check_name"])
    per_attempt = {n: [r for r in rows if r[7] == n] for n in (1, 2)}
    assert [len(per_attempt[1]), len(per_attempt[2])] == [len(default_checks())] * 2
    assert len(rows) == 2 * len(default_checks())
    assert all(r[3] for r in per_attempt[1])
    assert {r[1] for r in per_attempt[2] if not r[3]} == {
        "songplays_match_staged_plays", "time_matches_songplays", "users_level_of_latest_play",
    }  # fmt: skip


def test_a_results_table_of_before_attempts_gets_the_column(warehouse):
    execute("ALTER TABLE data_quality_results DROP COLUMN try_number")
    execute("INSERT INTO data_quality_results VALUES ('old', 'c', 't', TRUE, '1', '>= 1', now())")
    quality().execute(context(try_number=3))
    rows = table_rows(DB, "data_quality_results", ["run_id", "check_name"])
    assert {(r[0], r[7]) for r in rows} == {("dq", 3), ("old", None)}


def test_a_check_whose_sql_errors_is_a_failed_check_and_the_rest_still_run(warehouse):
    checks = [
        {
            "name": "broken",
            "table": "songplays",
            "sql": "SELECT COUNT(*) FROM no_such_table",
            "expected": 0,
        },
        {"name": "rows", "table": "songplays", "kind": "row_count_min", "min": 2},
    ]
    with pytest.raises(
        AirflowFailException,
        match=r"(?s)1 of 2 .*broken on songplays: "
        r"observed error: relation \"no_such_table\" does not exist",
    ):
        DataQualityOperator(task_id="dq", conn_id="redshift", checks=checks).execute(CONTEXT)
    stored = {row[1]: row[3] for row in table_rows(DB, "data_quality_results", ["check_name"])}
    assert stored == {"broken": False, "rows": True}
