"""StageToRedshiftOperator's PostgreSQL path against the real S3 API and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from airflow.exceptions import AirflowException
from astro.files import File
from astro.table import Metadata, Table

from include.sparkify.s3_objects import MissingObjectsError
from include.sparkify.sample_data import SampleSpec, generate
from operators.stage_redshift import StageToRedshiftOperator
from tests.stack_support import (
    connection_environment,
    count_rows,
    fresh_bucket,
    fresh_database,
    table_rows,
    upload_folder,
)

pytestmark = pytest.mark.stack

DB, BUCKET = "sparkify_test_stage", "sparkify-test-stage"
DAY1 = datetime(2018, 11, 1, tzinfo=UTC)
KEY_TEMPLATE = "log_data/%Y/%m/%Y-%m-%d-events.json"


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("stage-sample")
    generate(folder, SampleSpec(start=DAY1.date(), days=2, songs=150, seed=5))
    return folder


@pytest.fixture(scope="module")
def s3(sample):
    client = fresh_bucket(BUCKET)
    upload_folder(client, BUCKET, sample)
    return client


@pytest.fixture
def warehouse(monkeypatch) -> str:
    fresh_database(DB)
    for name, value in connection_environment(DB, BUCKET).items():
        monkeypatch.setenv(name, value)
    return DB


def operator(prefix: str, table: str, **kwargs) -> StageToRedshiftOperator:
    return StageToRedshiftOperator(
        task_id=f"stage_{table}",
        input_file=File(f"s3://{BUCKET}/{prefix}", conn_id="sparkify_s3_local"),
        output_table=Table(
            name=table, conn_id="sparkify_postgres", metadata=Metadata(schema="public")
        ),
        **kwargs,
    )


def run(op: StageToRedshiftOperator, start: datetime = DAY1, hours: int = 24):
    return op.execute(
        {"data_interval_start": start, "data_interval_end": start + timedelta(hours=hours)}
    )


def lines(path: Path) -> list[dict]:
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


def test_stages_the_day_of_the_interval_exactly(sample, s3, warehouse):
    day_file = sample / DAY1.strftime(KEY_TEMPLATE)
    expected = lines(day_file)
    result = run(operator("log_data/", "staging_events", key_template=KEY_TEMPLATE))
    assert result.name == "staging_events"
    rows = table_rows(DB, "staging_events", ["ts", "sessionid", "iteminsession"])
    assert len(rows) == len(expected)
    staged = sorted((r[15], r[12], r[1], r[17]) for r in rows)  # ts, sessionid, auth, userid
    assert staged == sorted((e["ts"], e["sessionId"], e["auth"], e["userId"]) for e in expected)
    user_agents = {r[16] for r in rows if r[16]}
    assert all(agent.startswith('"') for agent in user_agents)  # staged as delivered


def test_hourly_interval_stages_the_day_file_holding_the_hour(sample, s3, warehouse):
    run(
        operator("log_data/", "staging_events", key_template=KEY_TEMPLATE),
        DAY1 + timedelta(hours=13),
        1,
    )
    assert count_rows(DB, "staging_events") == len(lines(sample / DAY1.strftime(KEY_TEMPLATE)))


def test_songs_prefix_stages_every_file(sample, s3, warehouse):
    run(operator("song_data/", "staging_songs"))
    songs = [lines(p)[0] for p in (sample / "song_data").rglob("*.json")]
    rows = table_rows(DB, "staging_songs", ["song_id"])
    assert [r[6] for r in rows] == sorted(s["song_id"] for s in songs)
    by_id = {s["song_id"]: s for s in songs}
    for row in rows:
        assert row[8] == by_id[row[6]]["duration"]  # floats survive exactly
        assert row[7] == by_id[row[6]]["title"]  # non-ASCII, quotes, ampersands intact


def test_missing_day_fails_naming_the_file(s3, warehouse):
    later = datetime(2018, 11, 2, 12, tzinfo=UTC)  # 2018-11-02 exists, 2018-11-03 does not
    with pytest.raises(
        MissingObjectsError,
        match=r"s3://sparkify-test-stage/log_data/2018/11/2018-11-03-events\.json",
    ):
        run(operator("log_data/", "staging_events", key_template=KEY_TEMPLATE), later, 24)


def test_missing_day_skipped_when_configured(sample, s3, warehouse):
    later = datetime(2018, 11, 2, 12, tzinfo=UTC)
    run(
        operator("log_data/", "staging_events", key_template=KEY_TEMPLATE, missing_keys="skip"),
        later,
        24,
    )
    assert count_rows(DB, "staging_events") == len(
        lines(sample / "log_data/2018/11/2018-11-02-events.json")
    )


def test_empty_prefix_fails_clearly(s3, warehouse):
    with pytest.raises(
        MissingObjectsError, match=r"no \.json objects under s3://sparkify-test-stage/nothing/"
    ):
        run(operator("nothing/", "staging_songs"))


def test_malformed_line_names_file_and_line_and_keeps_the_table(sample, s3, warehouse):
    run(operator("song_data/", "staging_songs"))
    before = count_rows(DB, "staging_songs")
    broken = "song_data/Z/Z/Z/TRZZZBROKEN.json"
    s3.put_object(Bucket=BUCKET, Key=broken, Body=b'{"song_id": "SOX", "title": ')
    try:
        with pytest.raises(
            AirflowException,
            match=rf"s3://{BUCKET}/{broken} line 1: malformed JSON".replace(".json", r"\.json"),
        ):
            run(operator("song_data/", "staging_songs"))
    finally:
        s3.delete_object(Bucket=BUCKET, Key=broken)
    assert count_rows(DB, "staging_songs") == before


def test_wrong_password_names_the_connection(s3, warehouse, monkeypatch):
    env = connection_environment(DB, BUCKET)
    document = json.loads(env["AIRFLOW_CONN_SPARKIFY_POSTGRES"])
    monkeypatch.setenv(
        "AIRFLOW_CONN_SPARKIFY_POSTGRES", json.dumps({**document, "password": "wrong"})
    )
    with pytest.raises(
        Exception,
        match=r"connection 'sparkify_postgres' \(sparkify@127\.0\.0\.1:8001/"
        r"sparkify_test_stage\).*password",
    ):
        run(operator("song_data/", "staging_songs"))
