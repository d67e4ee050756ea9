"""End to end: real Airflow backfills sparkify_etl against the real S3 API and PostgreSQL.

Expected values are computed from the generated JSON files with a few lines of plain
Python, independently of the pipeline's SQL.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections import defaultdict
from contextlib import closing
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from dev.local_stack.run_pipeline import backfill_command, backfill_environment
from dev.sample_data import SampleSpec, generate
from tests.stack_support import (
    STAR_TABLE_KEYS,
    connection_environment,
    count_rows,
    fresh_bucket,
    fresh_database,
    table_rows,
    upload_folder,
)

pytestmark = [pytest.mark.e2e, pytest.mark.stack]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BUCKET = "sparkify-e2e"
# A known secret (moto takes any key): no log line may show it.
S3_SECRET = "e2e-secret-Vq7Zt3Kp9"
BACKFILL_OUTPUT: list[str] = []
FIRST_DAY = date(2018, 11, 1)
DAYS = [FIRST_DAY + timedelta(days=n) for n in range(3)]


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("sample")
    # One day more than the runs load: its events must stay out of the warehouse.
    generate(folder, SampleSpec(start=FIRST_DAY, days=len(DAYS) + 1, songs=120, seed=7))
    upload_folder(fresh_bucket(BUCKET), BUCKET, folder)
    return folder


@pytest.fixture(scope="module")
def airflow_env() -> dict[str, str]:
    """A private Airflow home (its own SQLite metadata DB) for the backfills of this module."""
    home = PROJECT_ROOT / ".local" / "test-airflow"
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "AIRFLOW_HOME": str(home)}
    env.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(PROJECT_ROOT / "dags"))
    env.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(PROJECT_ROOT / "plugins"))
    env.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(PROJECT_ROOT / "include"), env.get("PYTHONPATH")])
    )
    migrate = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert migrate.returncode == 0, migrate.stdout[-2000:] + migrate.stderr[-2000:]
    return env


def backfill(env: dict[str, str], database: str, start: date, end: date) -> None:
    connections = connection_environment(database, BUCKET, s3_secret=S3_SECRET)
    run_env = backfill_environment({**env, **connections})
    result = subprocess.run(
        backfill_command(start, end), env=run_env, capture_output=True, text=True, timeout=900
    )
    BACKFILL_OUTPUT.append(result.stdout + result.stderr)
    tail = (result.stdout + result.stderr)[-4000:]
    assert result.returncode == 0, f"backfill {start}..{end} failed:\n{tail}"


def run_states(env: dict[str, str]) -> dict[str, str]:
    """Logical day -> state of the DAG's runs, read from the private SQLite metadata DB."""
    database = Path(env["AIRFLOW_HOME"]) / "airflow.db"
    with closing(sqlite3.connect(database)) as conn:
        rows = conn.execute(
            "SELECT execution_date, state FROM dag_run WHERE dag_id = 'sparkify_etl'"
        ).fetchall()
    return {execution_date[:10]: state for execution_date, state in rows}


# ----------------------------------------------------------------------- expectations


def read_events(folder: Path, days: list[date]) -> list[dict]:
    events = []
    for day in days:
        path = folder / "log_data" / day.strftime("%Y/%m/%Y-%m-%d-events.json")
        events += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return events


def read_songs(folder: Path) -> list[dict]:
    return [
        json.loads(p.read_text(encoding="utf-8")) for p in (folder / "song_data").rglob("*.json")
    ]


def expected_counts(folder: Path, days: list[date]) -> dict[str, int]:
    plays = {}
    for event in read_events(folder, days):
        if event["page"] == "NextSong":
            plays[(event["userId"], event["sessionId"], event["itemInSession"])] = event
    songs = read_songs(folder)
    song_keys = {(s["title"], s["artist_name"], s["duration"]) for s in songs}
    matched = sum(1 for p in plays.values() if (p["song"], p["artist"], p["length"]) in song_keys)
    return {
        "songplays": len(plays),
        "matched_songplays": matched,
        "users": len({p["userId"] for p in plays.values() if p["userId"]}),
        "time": len({p["ts"] for p in plays.values()}),
        "songs": len({s["song_id"] for s in songs}),
        "artists": len({s["artist_id"] for s in songs}),
    }


def expected_levels(folder: Path, days: list[date]) -> dict[int, str]:
    latest: dict[str, tuple] = defaultdict(tuple)
    for e in read_events(folder, days):
        if e["page"] == "NextSong" and e["userId"]:
            key = (e["ts"], e["sessionId"], e["itemInSession"])
            if not latest[e["userId"]] or key > latest[e["userId"]][0]:
                latest[e["userId"]] = (key, e["level"])
    return {int(user): level for user, (_, level) in latest.items()}


# ----------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def one_pass(sample, airflow_env) -> str:
    """A warehouse loaded by one backfill over DAYS, in order."""
    database = fresh_database("sparkify_e2e_one_pass")
    backfill(airflow_env, database, DAYS[0], DAYS[-1])
    return database


def test_backfill_loads_exactly_the_generated_plays(sample, airflow_env, one_pass):
    database = one_pass

    expected = expected_counts(sample, DAYS)
    assert expected["songplays"] > 100 and 0 < expected["matched_songplays"] < expected["songplays"]
    for table in ("songplays", "users", "time", "songs", "artists"):
        assert count_rows(database, table) == expected[table], table

    rows = table_rows(database, "songplays", ["songplay_id"])
    assert sum(1 for row in rows if row[4] is not None) == expected["matched_songplays"]
    first = datetime(DAYS[0].year, DAYS[0].month, DAYS[0].day)
    assert all(first <= row[1] < first + timedelta(days=len(DAYS)) for row in rows)
    levels = {row[0]: row[4] for row in table_rows(database, "users", ["user_id"])}
    assert levels == expected_levels(sample, DAYS)

    assert run_states(airflow_env) == {day.isoformat(): "success" for day in DAYS}
    checks = table_rows(database, "data_quality_results", ["run_id", "check_name"])
    assert len({row[0] for row in checks}) == len(DAYS)
    assert [row[1] for row in checks if not row[3]] == []


def test_any_order_with_repeats_equals_one_pass(sample, airflow_env, one_pass):
    shuffled = fresh_database("sparkify_e2e_shuffled")
    for day in (DAYS[2], DAYS[0], DAYS[1], DAYS[2], DAYS[0]):
        backfill(airflow_env, shuffled, day, day)

    for table, key in STAR_TABLE_KEYS.items():
        expected_rows = table_rows(one_pass, table, key)
        assert expected_rows, f"{table} is empty after one pass"
        assert table_rows(shuffled, table, key) == expected_rows, table


def test_ts_is_utc_milliseconds(sample, airflow_env):
    """start_time is the event's ts read as UTC epoch milliseconds, to the millisecond."""
    database = fresh_database("sparkify_e2e_time")
    backfill(airflow_env, database, DAYS[0], DAYS[0])
    epoch = datetime(1970, 1, 1)
    expected = sorted(
        {epoch + timedelta(milliseconds=e["ts"]) for e in read_events(sample, DAYS[:1])
         if e["page"] == "NextSong"}
    )  # fmt: skip
    assert [row[0] for row in table_rows(database, "time", ["start_time"])] == expected
    row = table_rows(database, "time", ["start_time"])[0]
    moment = expected[0].replace(tzinfo=UTC)
    assert row[1:] == (
        moment.hour, moment.day, moment.isocalendar().week, moment.month, moment.year,
        (moment.weekday() + 1) % 7,
    )  # fmt: skip


def test_no_secret_reaches_a_log(one_pass, airflow_env):
    """The backfill runs tasks in its own process (DebugExecutor): its output is the task log."""
    logs = Path(airflow_env["AIRFLOW_HOME"]) / "logs"
    texts = [*BACKFILL_OUTPUT, *(p.read_text(errors="replace") for p in logs.rglob("*.log"))]
    assert any(
        "Staged" in text and "Retrieving connection 'aws-redshift'" in text for text in texts
    )
    leaks = [text for text in texts if S3_SECRET in text]
    assert leaks == []
