"""Faults caused for real against local servers: a flaky S3, a stopped S3, a killed backend."""

from __future__ import annotations

import socket
import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg2
import pytest
from airflow.exceptions import AirflowException
from astro.files import File
from astro.table import Metadata, Table
from moto.server import ThreadedMotoServer

from dev.local_stack.seed_s3 import s3_client
from dev.sample_data import SampleSpec, generate
from operators.stage_redshift import StageToRedshiftOperator
from sparkify.warehouse import WarehouseError
from tests.fakes import apply_environment
from tests.fault_proxy import FlakyProxy
from tests.stack_support import (
    S3_ENDPOINT,
    connection_environment,
    count_rows,
    dsn,
    fresh_bucket,
    fresh_database,
    table_rows,
    upload_folder,
)

pytestmark = pytest.mark.stack

DB, BUCKET = "sparkify_test_faults", "sparkify-test-faults"
DAY1 = datetime(2018, 11, 1, tzinfo=UTC)
CONTEXT = {
    "data_interval_start": DAY1, "data_interval_end": DAY1 + timedelta(days=1), "run_id": "faults",
}  # fmt: skip


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faults")
    generate(folder, SampleSpec(start=DAY1.date(), days=1, songs=60, seed=3))
    return folder


@pytest.fixture(scope="module")
def bucket(sample):
    client = fresh_bucket(BUCKET)
    upload_folder(client, BUCKET, sample)
    return client


@pytest.fixture
def use_connections(monkeypatch):
    fresh_database(DB)

    def aim(**overrides):
        apply_environment(monkeypatch, connection_environment(DB, BUCKET, **overrides))

    aim()
    return aim


def songs_operator(bucket: str = BUCKET) -> StageToRedshiftOperator:
    return StageToRedshiftOperator(
        task_id="stage_songs",
        input_file=File(f"s3://{bucket}/song_data/", conn_id="aws-redshift"),
        output_table=Table(
            name="staging_songs", conn_id="redshift", metadata=Metadata(schema="public")
        ),
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_s3_503s_are_retried_and_the_load_is_complete(bucket, use_connections):
    songs_operator().execute(CONTEXT)
    expected = table_rows(DB, "staging_songs", ["song_id"])
    with FlakyProxy(S3_ENDPOINT, fail_every=3) as proxy:
        use_connections(s3_endpoint=proxy.url)
        songs_operator().execute(CONTEXT)
    assert proxy.failed >= 10, "the proxy should have answered 503 many times"
    assert table_rows(DB, "staging_songs", ["song_id"]) == expected


def test_stopped_s3_server_fails_clearly_and_a_retry_after_restart_loads(sample, use_connections):
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    upload_folder(_private_bucket(endpoint), "private-faults", sample)
    use_connections(s3_endpoint=endpoint)
    server.stop()
    try:
        with pytest.raises(
            AirflowException, match=rf"cannot list s3://private-faults .*{endpoint}"
        ):
            songs_operator("private-faults").execute(CONTEXT)
        assert count_rows(DB, "staging_songs") == 0
    finally:
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()  # moto keeps its in-process state across a restart
    try:
        songs_operator("private-faults").execute(CONTEXT)
    finally:
        server.stop()
    assert count_rows(DB, "staging_songs") == len(list((sample / "song_data").rglob("*.json")))


def _private_bucket(endpoint: str):
    client = s3_client(endpoint)
    client.create_bucket(Bucket="private-faults")
    return client


def test_backend_killed_during_copy_fails_and_the_retry_loads_exactly(tmp_path, use_connections):
    big = tmp_path / "big"
    generate(
        big,
        SampleSpec(start=DAY1.date(), days=1, songs=1, events_per_day=(120_000, 120_000), seed=9),
    )
    bucket = "sparkify-test-faults-big"
    upload_folder(fresh_bucket(bucket), bucket, big)
    use_connections()
    events = StageToRedshiftOperator(
        task_id="stage_events",
        input_file=File(f"s3://{bucket}/log_data/", conn_id="aws-redshift"),
        output_table=Table(
            name="staging_events", conn_id="redshift", metadata=Metadata(schema="public")
        ),
        key_template="log_data/%Y/%m/%Y-%m-%d-events.json",
    )
    killed: list[int] = []

    def kill_the_copy() -> None:
        watcher = psycopg2.connect(dsn("sparkify"))
        watcher.autocommit = True
        deadline = time.monotonic() + 60
        with watcher.cursor() as cursor:
            while not killed and time.monotonic() < deadline:
                cursor.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s AND state = 'active' "
                    "AND query LIKE 'COPY %%'",
                    (DB,),
                )
                for (pid,) in cursor.fetchall():
                    time.sleep(0.3)  # well into the COPY
                    cursor.execute("SELECT pg_terminate_backend(%s)", (pid,))
                    killed.append(pid)
                time.sleep(0.02)
        watcher.close()

    killer = threading.Thread(target=kill_the_copy)
    killer.start()
    with pytest.raises(
        WarehouseError, match=r"lost the connection .*'redshift'.*retry starts over"
    ):
        events.execute(CONTEXT)
    killer.join()
    assert killed, "the COPY was never seen running"
    assert count_rows(DB, "staging_events") == 0  # nothing half-loaded

    events.execute(CONTEXT)  # the retry
    assert count_rows(DB, "staging_events") == 120_000


def test_unreachable_warehouse_names_the_connection(bucket, use_connections, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_REDSHIFT",
        f'{{"conn_type": "postgres", "host": "127.0.0.1", "port": {free_port()}, '
        '"login": "sparkify", "password": "unreachable-warehouse-password", "schema": "sparkify"}',
    )
    with pytest.raises(
        WarehouseError,
        match=r"cannot connect to the warehouse through connection 'redshift' "
        r".*Check its host, port",
    ):
        songs_operator().execute(CONTEXT)
