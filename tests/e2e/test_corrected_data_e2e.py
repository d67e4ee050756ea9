"""End to end, through real Airflow backfills: corrected data, and checks that fail.

Days 1-3 are loaded; day 2's file is then replaced by a corrected one (plays removed, one
user's level changed) and day 2 runs again. Every table then equals what one pass over
the corrected files gives: a second warehouse loads those from the start, and the expected
rows are computed from the files in plain Python. A run whose staged log holds a play
outside its day fails its checks at once (no retry), alerts, and records them once.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from dev.local_stack.run_pipeline import backfill_command, backfill_environment
from dev.sample_data import SampleSpec, generate
from sparkify.checks import default_checks
from tests.sql.test_star_schema_sql import (
    expected_users,
    plan_correction,
    plays,
    write_corrected_day,
)
from tests.stack_support import (
    STAR_TABLE_KEYS,
    connection_environment,
    fresh_bucket,
    fresh_database,
    table_rows,
    upload_folder,
)

pytestmark = [pytest.mark.e2e, pytest.mark.stack]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BUCKET = "sparkify-e2e-corrected"  # the original files, then day 2 corrected
ONE_PASS_BUCKET = "sparkify-e2e-corrected-once"  # the corrected files from the start
FAILING_BUCKET = "sparkify-e2e-check-fails"  # and a day 4 holding a play of day 5
LOG_KEY = "log_data/%Y/%m/%Y-%m-%d-events.json"
DAYS = [datetime(2018, 11, d, tzinfo=UTC) for d in (1, 2, 3)]
DAY4 = datetime(2018, 11, 4, tzinfo=UTC)
TABLE_KEYS = {**STAR_TABLE_KEYS, "users_history": ["user_id", "last_play_at"]}
EPOCH = datetime(1970, 1, 1)


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    """The generated files, and a copy whose day 2 is corrected (logs only)."""
    original = tmp_path_factory.mktemp("original")
    generate(original, SampleSpec(start=DAYS[0].date(), days=len(DAYS), songs=120, seed=9))
    corrected = tmp_path_factory.mktemp("corrected")
    plan = plan_correction(original, DAYS, DAYS[1])
    write_corrected_day(original, corrected, DAYS[1], plan)
    (corrected / "plan.json").write_text(json.dumps(plan), encoding="utf-8")
    return {"original": original, "corrected": corrected}


@pytest.fixture(scope="module")
def airflow_env() -> dict[str, str]:
    """A private Airflow home (its own SQLite metadata DB) for this module's backfills,
    new each time: try numbers count from 1."""
    home = PROJECT_ROOT / ".local" / "test-airflow-corrected"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    env = {**os.environ, "AIRFLOW_HOME": str(home)}
    env.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(PROJECT_ROOT / "dags"))
    env.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(PROJECT_ROOT / "plugins"))
    env.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(PROJECT_ROOT / "include"), env.get("PYTHONPATH")])
    )
    migrate = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert migrate.returncode == 0, migrate.stdout[-2000:] + migrate.stderr[-2000:]
    return env


def backfill(env: dict[str, str], database: str, bucket: str, start: date, end: date) -> int:
    """Backfill [start, end] against ``database`` and ``bucket``; the return code."""
    run_env = backfill_environment({**env, **connection_environment(database, bucket)})
    result = subprocess.run(
        backfill_command(start, end), env=run_env, capture_output=True, text=True, timeout=900
    )
    if result.returncode != 0:
        print((result.stdout + result.stderr)[-6000:])
    return result.returncode


def metadata(env: dict[str, str], query: str) -> list[tuple]:
    """Rows of a query on the private SQLite metadata DB."""
    with closing(sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db")) as conn:
        return conn.execute(query).fetchall()


def run_state(env: dict[str, str], day: datetime) -> str:
    states = dict(
        metadata(env, "SELECT execution_date, state FROM dag_run WHERE dag_id = 'sparkify_etl'")
    )
    return {key[:10]: state for key, state in states.items()}[day.date().isoformat()]


# ----------------------------------------------------------------------- expectations


def expected_songplays(folder: Path) -> list[tuple]:
    """(songplay_id, start_time, user_id, level) of every play in the files, by id."""
    rows = {}
    for event in plays(folder, DAYS[0], DAYS[-1] + timedelta(days=1)).values():
        identity = f"{event['userId']}-{event['sessionId']}-{event['itemInSession']}"
        start = EPOCH + timedelta(milliseconds=event["ts"])
        user = int(event["userId"]) if event["userId"] else None
        rows[hashlib.md5(identity.encode()).hexdigest()] = (start, user, event["level"])
    return [(songplay_id, *rest) for songplay_id, rest in sorted(rows.items())]


def expected_times(folder: Path) -> list[datetime]:
    found = plays(folder, DAYS[0], DAYS[-1] + timedelta(days=1)).values()
    return sorted({EPOCH + timedelta(milliseconds=e["ts"]) for e in found})


# ----------------------------------------------------------------------- warehouses


@pytest.fixture(scope="module")
def one_pass(folders, airflow_env) -> str:
    """The corrected files, loaded by one backfill over days 1-3."""
    client = fresh_bucket(ONE_PASS_BUCKET)
    upload_folder(client, ONE_PASS_BUCKET, folders["original"])
    upload_folder(client, ONE_PASS_BUCKET, folders["corrected"])  # day 2 corrected
    database = fresh_database("sparkify_e2e_corrected_once")
    assert backfill(airflow_env, database, ONE_PASS_BUCKET, DAYS[0], DAYS[-1]) == 0
    return database


@pytest.fixture(scope="module")
def rerun(folders, airflow_env) -> dict[str, dict]:
    """Days 1-3 from the original files, then day 2 again from its corrected file; the
    star tables before the correction, and the warehouse's name."""
    client = fresh_bucket(BUCKET)
    upload_folder(client, BUCKET, folders["original"])
    database = fresh_database("sparkify_e2e_corrected")
    assert backfill(airflow_env, database, BUCKET, DAYS[0], DAYS[-1]) == 0
    before = {table: table_rows(database, table, keys) for table, keys in TABLE_KEYS.items()}
    key = DAYS[1].strftime(LOG_KEY)
    client.upload_file(str(folders["corrected"] / key), BUCKET, key)
    assert backfill(airflow_env, database, BUCKET, DAYS[1], DAYS[1]) == 0
    return {"database": database, "before": before}


# ----------------------------------------------------------------------- tests


def test_rerun_of_a_corrected_day_equals_one_pass_over_the_corrected_files(
    folders, rerun, one_pass
):
    database = rerun["database"]
    for table, keys in TABLE_KEYS.items():
        expected_rows = table_rows(one_pass, table, keys)
        assert expected_rows, f"{table} is empty after one pass"
        assert table_rows(database, table, keys) == expected_rows, table


def test_every_star_table_holds_what_the_corrected_files_say(folders, rerun):
    corrected, database = folders["corrected"], rerun["database"]
    songplays = [row[:4] for row in table_rows(database, "songplays", ["songplay_id"])]
    assert songplays == expected_songplays(corrected)
    assert [row[0] for row in table_rows(database, "time", ["start_time"])] == expected_times(
        corrected
    )
    users = {row[0]: row[1:] for row in table_rows(database, "users", ["user_id"])}
    assert users == expected_users(corrected, DAYS[0], DAYS[-1] + timedelta(days=1))


def test_the_correction_changed_what_an_upsert_would_have_kept(folders, rerun):
    """Not vacuous: before the re-run the tables held the original files' rows; the
    corrected day took plays, start times, a user and a stale level away."""
    plan = json.loads((folders["corrected"] / "plan.json").read_text(encoding="utf-8"))
    stale, gone, flipped = (int(plan[key]) for key in ("stale", "gone", "flipped"))
    before = {row[0]: row for row in rerun["before"]["users"]}
    after = {row[0]: row for row in table_rows(rerun["database"], "users", ["user_id"])}
    original = expected_users(folders["original"], DAYS[0], DAYS[-1] + timedelta(days=1))
    assert {u: row[1:] for u, row in before.items()} == original
    assert gone in before and gone not in after
    assert before[stale][4] != after[stale][4]  # the level of an earlier play is back
    assert after[stale][5] < DAYS[1].replace(tzinfo=None)
    assert before[flipped][4] != after[flipped][4]
    assert len(rerun["before"]["songplays"]) > len(expected_songplays(folders["corrected"]))
    times_before = {row[0] for row in rerun["before"]["time"]}
    assert times_before > set(expected_times(folders["corrected"]))


def test_each_attempt_records_its_checks_once_and_all_passed(rerun):
    rows = table_rows(rerun["database"], "data_quality_results", ["run_id", "check_name"])
    attempts: dict[tuple, list[str]] = {}
    for row in rows:
        attempts.setdefault((row[0], row[7]), []).append(row[1])
        assert row[3], f"{row[1]} failed in {row[0]}"
    names = sorted(check["name"] for check in default_checks())
    assert all(sorted(checked) == names for checked in attempts.values())
    runs = {run_id for run_id, _ in attempts}
    assert len(runs) == len(DAYS)
    # the re-run of day 2 is its second attempt: both recorded, each once
    assert sorted(n for run_id, n in attempts if run_id.startswith("backfill__2018-11-02")) == [
        1, 2,
    ]  # fmt: skip


def test_a_play_outside_its_days_fails_the_checks_at_once_with_an_alert(folders, airflow_env):
    """Day 4's file holds a play of day 5: it belongs to no interval that file is loaded
    for. The checks fail on the first try (no retry), the alert is written, and the run
    records its checks once."""
    client = fresh_bucket(FAILING_BUCKET)
    upload_folder(client, FAILING_BUCKET, folders["original"])  # the run stages day 4 only
    day3 = folders["original"] / DAYS[2].strftime("log_data/%Y/%m/%Y-%m-%d-events.json")
    play = next(
        json.loads(line) for line in day3.read_text("utf-8").splitlines() if "NextSong" in line
    )
    day4 = {**play, "sessionId": 999_999, "itemInSession": 0, "ts": play["ts"] + 86_400_000}
    day5 = {**day4, "itemInSession": 1, "ts": day4["ts"] + 86_400_000}
    body = (json.dumps(day4) + "\n" + json.dumps(day5) + "\n").encode()
    client.put_object(Bucket=FAILING_BUCKET, Key=DAY4.strftime(LOG_KEY), Body=body)
    database = fresh_database("sparkify_e2e_check_fails")
    assert backfill(airflow_env, database, FAILING_BUCKET, DAY4.date(), DAY4.date()) != 0

    assert run_state(airflow_env, DAY4) == "failed"
    ((state, try_number),) = metadata(
        airflow_env,
        "SELECT state, try_number FROM task_instance WHERE dag_id = 'sparkify_etl' AND "
        "task_id = 'run_data_quality_checks' AND run_id LIKE 'backfill__2018-11-04%'",
    )
    assert (state, try_number) == ("failed", 1)

    results = [
        row
        for row in table_rows(database, "data_quality_results", ["check_name"])
        if row[0].startswith("backfill__2018-11-04")
    ]
    assert len(results) == len(default_checks()) and {row[7] for row in results} == {1}
    assert [(row[1], row[4], row[5]) for row in results if not row[3]] == [
        ("staged_plays_within_log_days", "1", "== 0")
    ]

    listing = client.list_objects_v2(Bucket=FAILING_BUCKET, Prefix="reports/alerts/")
    alerts = [item["Key"] for item in listing.get("Contents", [])]
    assert [key.rsplit("/", 1)[1] for key in alerts] == ["run_data_quality_checks.try1.txt"]
    text = client.get_object(Bucket=FAILING_BUCKET, Key=alerts[0])["Body"].read().decode()
    assert "1 of" in text and "data quality checks failed" in text
