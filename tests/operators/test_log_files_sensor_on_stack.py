"""LogFilesSensor against the real S3 API: it finds the run's file, names a missing one,
and pokes through the process's shared S3 client."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from airflow.exceptions import AirflowSensorTimeout

from operators.log_files_sensor import LogFilesSensor
from sparkify.aws_connection import s3_client
from tests.fakes import apply_environment
from tests.stack_support import connection_environment, fresh_bucket

pytestmark = pytest.mark.stack

BUCKET = "sparkify-test-sensor"
KEY_TEMPLATE = "log_data/%Y/%m/%Y-%m-%d-events.json"
PRESENT = datetime(2018, 11, 1, tzinfo=UTC)
ABSENT = datetime(2018, 11, 2, tzinfo=UTC)


@pytest.fixture
def s3(monkeypatch):
    client = fresh_bucket(BUCKET)
    client.put_object(Bucket=BUCKET, Key=PRESENT.strftime(KEY_TEMPLATE), Body=b"{}\n")
    apply_environment(monkeypatch, connection_environment("sparkify_test_sensor", BUCKET))
    return client


def sensor(**kwargs) -> LogFilesSensor:
    return LogFilesSensor(
        task_id="wait_for_log_file",
        bucket_name=BUCKET,
        key_template=KEY_TEMPLATE,
        aws_conn_id="aws-redshift",
        mode="poke",
        poke_interval=0.05,
        timeout=0.3,
        **kwargs,
    )


def interval(start: datetime) -> dict:
    return {"data_interval_start": start, "data_interval_end": start + timedelta(days=1)}


def test_the_sensor_finds_the_intervals_file(s3):
    waiting = sensor()
    waiting.execute(interval(PRESENT))
    assert waiting.bucket_key == [PRESENT.strftime(KEY_TEMPLATE)]


def test_a_file_that_never_comes_fails_naming_its_url(s3):
    with pytest.raises(AirflowSensorTimeout) as failure:
        sensor().execute(interval(ABSENT))
    assert f"s3://{BUCKET}/{ABSENT.strftime(KEY_TEMPLATE)}" in str(failure.value)
    assert PRESENT.strftime(KEY_TEMPLATE) not in str(failure.value)


def test_sensors_poke_through_the_shared_client_unless_they_override_the_connection(s3):
    shared = s3_client("aws-redshift", max_workers=10)
    assert sensor().hook.conn is shared
    assert sensor().hook.conn is shared  # a second run's sensor builds no client
    own = sensor(verify=False).hook.conn
    assert own is not shared
    assert own.head_object(Bucket=BUCKET, Key=PRESENT.strftime(KEY_TEMPLATE))["ContentLength"] == 3
