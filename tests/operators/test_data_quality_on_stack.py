"""DataQualityOperator with the default suite on real PostgreSQL: a sound warehouse passes,
a broken one fails with one message naming every failed check, and results are recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from airflow.exceptions import AirflowException

from operators.data_quality import DataQualityOperator
from sparkify.checks import default_checks
from tests.stack_support import connect, connection_environment, fresh_database, table_rows

pytestmark = pytest.mark.stack

DB = "sparkify_test_quality"
DAY = datetime(2018, 11, 1, tzinfo=UTC)
CONTEXT = {"data_interval_start": DAY, "data_interval_end": DAY + timedelta(days=1), "run_id": "dq"}
T1, T2 = datetime(2018, 11, 1, 10, 0, 0), datetime(2018, 11, 1, 11, 30, 0)


@pytest.fixture
def warehouse(monkeypatch):
    fresh_database(DB)
    for name, value in connection_environment(DB).items():
        monkeypatch.setenv(name, value)
    with connect(DB) as conn, conn.cursor() as cursor:
        cursor.execute(
            "INSERT INTO staging_events (page, ts, userid, sessionid, iteminsession, level) VALUES "
            "('NextSong', 1541066400000, '1', 5, 0, 'free'), "
            "('NextSong', 1541071800000, '2', 6, 0, 'paid'), "
            "('Home', 1541071800001, '', 7, 0, 'free')"
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


def test_a_sound_warehouse_passes_every_check_and_records_them(warehouse):
    results = quality().execute(CONTEXT)
    assert len(results) == len(default_checks())
    stored = table_rows(DB, "data_quality_results", ["check_name"])
    assert len(stored) == len(results) and all(row[3] for row in stored)
    assert {row[0] for row in stored} == {"dq"}


def test_a_broken_warehouse_fails_naming_every_failed_check(warehouse):
    with connect(DB) as conn, conn.cursor() as cursor:
        cursor.execute(
            "INSERT INTO songplays VALUES ('c', %s, 99, 'gold', 'SO404', NULL, 6, 'Z', 'UA')", (T2,)
        )
        cursor.execute("UPDATE time SET hour = 25 WHERE hour = 11")
        cursor.execute("DELETE FROM artists")
        conn.commit()
    with pytest.raises(AirflowException) as failure:
        quality().execute(CONTEXT)
    message = str(failure.value)
    failed = sorted(line.split(": ", 2)[1].split(" on ")[0] for line in message.splitlines()[1:])
    assert failed == [
        "artists_has_rows",
        "songplays_artist_id_in_artists",
        "songplays_level_accepted",
        "songplays_reconcile_with_staging",
        "songplays_song_id_in_songs",
        "songplays_user_id_in_users",
        "time_hour_in_range",
    ]
    assert message.startswith(f"7 of {len(default_checks())} data quality checks failed:")
    assert (
        "FAILED: songplays_reconcile_with_staging on songplays: observed 1, expected == 0"
        in message
    )
    assert "FAILED: artists_has_rows on artists: observed 0, expected >= 1" in message
    stored = {row[1]: row[3] for row in table_rows(DB, "data_quality_results", ["check_name"])}
    assert sorted(name for name, passed in stored.items() if not passed) == failed


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
        AirflowException,
        match=r"(?s)1 of 2 .*broken on songplays: "
        r"observed error: relation \"no_such_table\" does not exist",
    ):
        DataQualityOperator(task_id="dq", conn_id="redshift", checks=checks).execute(CONTEXT)
    stored = {row[1]: row[3] for row in table_rows(DB, "data_quality_results", ["check_name"])}
    assert stored == {"broken": False, "rows": True}
