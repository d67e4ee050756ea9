"""Unit tests for StageToRedshiftOperator, with a fake S3 client and a fake warehouse.

The warehouse connection ``warehouse`` is defined per test through the environment: its
conn_type (``postgres`` unless a test says ``redshift``) picks the staging path.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import jinja2
import pendulum
import pytest
from airflow.exceptions import AirflowException
from airflow.models.xcom import BaseXCom
from astro.files import File
from astro.sql import LoadFileOperator
from astro.table import Metadata, Table

from operators.stage_redshift import StageToRedshiftOperator
from sparkify.s3_objects import MissingObjectsError
from sparkify.sql import read_sql
from tests.fakes import (
    STAGING_BUCKET,
    STAGING_EVENTS_INFO,
    STAGING_SONGS_INFO,
    FakeConnection,
    FakeCursor,
    FakeS3Client,
    Result,
    parse_copy,
    patch_postgres_hook,
    record_connection_lookups,
    set_connection,
)
from tests.fakes import events_staging_operator as make_operator
from tests.fakes import songs_staging_operator as songs_operator

BUCKET = STAGING_BUCKET
ROLE = "arn:aws:iam::123456789012:role/sparkifySecretRole"
DAY1 = "log_data/2018/11/2018-11-05-events.json"
DAY2 = "log_data/2018/11/2018-11-06-events.json"
TABLE = '"public"."staging_events"'
EVENT = {
    "artist": "Des'ree", "auth": "Logged In", "firstName": "Kaylee", "gender": "F",
    "itemInSession": 1, "lastName": "Summers", "length": 246.30812, "level": "free",
    "location": "Phoenix-Mesa-Scottsdale, AZ", "method": "PUT", "page": "NextSong",
    "registration": 1540344794796.0, "sessionId": 139, "song": "You Gotta Be", "status": 200,
    "ts": 1541106106796, "userAgent": "\"Mozilla/5.0\"", "userId": "8",
}  # fmt: skip
STAGING_EVENTS = STAGING_EVENTS_INFO
RUN_ID = "scheduled__2018-11-05T00:00:00+00:00"
REJECTS = '"public"."staging_rejects"'
DELETE_COUNTS = (
    'DELETE FROM "public"."staging_counts" '
    "WHERE table_name = %(table_name)s AND run_id = %(run_id)s",
    {"table_name": "staging_events", "run_id": RUN_ID},
)
STALE_RUNS = (
    f"DELETE FROM {TABLE} "
    "WHERE run_id IS NULL OR (staged_at < %(stale_before)s AND run_id <> %(run_id)s)"
)
RUN_ROWS = (f"DELETE FROM {TABLE} WHERE run_id = %(run_id)s", {"run_id": RUN_ID})
# Where each run's rows are told apart, in the rows the COPY sends.
RUN_FIELD = [row[0] for row in STAGING_EVENTS_INFO].index("run_id")
STAGED_AT_FIELD = [row[0] for row in STAGING_EVENTS_INFO].index("staged_at")
DELETE_REJECTS = (
    f"DELETE FROM {REJECTS} WHERE run_id = %(run_id)s AND table_name = %(table_name)s",
    {"run_id": RUN_ID, "table_name": "staging_events"},
)


def lines(*events: dict) -> bytes:
    return "".join(json.dumps(e) + "\n" for e in events).encode()


NOV5 = pendulum.datetime(2018, 11, 5, tz="UTC")


def context(start: pendulum.DateTime = NOV5, days: int = 2) -> dict:
    return {
        "data_interval_start": start,
        "data_interval_end": start.add(days=days),
        "run_id": RUN_ID,
    }


def s3(objects: dict[str, bytes]) -> FakeS3Client:
    return FakeS3Client({BUCKET: objects})


def use_connections(
    monkeypatch,
    warehouse_type: str = "postgres",
    warehouse_extra: dict | None = None,
    aws_extra: dict | None = None,
) -> list[str]:
    """Define ``warehouse`` (of ``warehouse_type``) and ``aws_conn``; returns the conn ids
    looked up from then on."""
    set_connection(monkeypatch, "warehouse", warehouse_type, extra=warehouse_extra or {})
    set_connection(monkeypatch, "aws_conn", "aws", extra=aws_extra or {})
    return record_connection_lookups(monkeypatch)


@pytest.fixture(autouse=True)
def postgres_warehouse(monkeypatch):
    """By default the warehouse is PostgreSQL, as locally; Redshift tests redefine it."""
    use_connections(monkeypatch)


# ----------------------------------------------------------------------------- construction


def test_defaults_and_no_datasets():
    operator = make_operator()
    assert operator.dialect == "postgres"
    assert operator.missing_keys == "fail"
    # Datasets are published by the quality checks; the bucket is a Variable.
    assert operator.outlets == []
    assert operator.inlets == []
    assert operator.schema == "public"
    assert (operator.max_rejects, operator.rejects_table) == (0, "staging_rejects")
    assert (operator.incremental, operator.incremental_run) == (False, False)


def test_is_an_astro_load_file_task_returning_the_output_table(monkeypatch):
    operator = make_operator(key_template=None)
    assert isinstance(operator, LoadFileOperator)
    client = s3({"log_data/a.json": lines(EVENT)})
    monkeypatch.setattr(StageToRedshiftOperator, "_s3_client", lambda self: client)
    conn = FakeConnection(postgres_cursor())
    patch_postgres_hook(monkeypatch, conn)

    result = operator.execute(context())

    assert result is operator.output_table
    assert len(parse_copy(conn.cursor_obj.copied, STAGING_EVENTS)) == 1
    # What the downstream tasks receive through XCom is the same Table.
    pushed = BaseXCom.deserialize_value(SimpleNamespace(value=BaseXCom.serialize_value(result)))
    assert pushed == Table(
        name="staging_events", conn_id="warehouse", metadata=Metadata(schema="public")
    )


@pytest.mark.parametrize("conn_type", ["postgres", "redshift"])
def test_dialect_is_the_warehouse_connections_type_read_at_run_time(monkeypatch, conn_type):
    monkeypatch.delenv("AIRFLOW_CONN_WAREHOUSE")
    asked = record_connection_lookups(monkeypatch)
    operator = make_operator()  # no connection is needed to build the task (DAG parsing)
    assert asked == []
    set_connection(monkeypatch, "warehouse", conn_type)
    assert operator.dialect == conn_type
    assert operator.dialect == conn_type
    assert asked == ["warehouse"]  # looked up once per task run


def test_warehouse_connection_of_another_type_fails_at_run_time_naming_it(monkeypatch):
    use_connections(monkeypatch, warehouse_type="mysql")
    operator = make_operator()  # builds: the type is only read when the task runs
    monkeypatch.setattr(
        StageToRedshiftOperator, "_s3_client", lambda self: s3({DAY1: b"", DAY2: b""})
    )
    conn = FakeConnection(postgres_cursor())
    patch_postgres_hook(monkeypatch, conn)
    with pytest.raises(ValueError) as info:
        operator.execute(context())
    assert str(info.value) == (
        "connection 'warehouse' has conn_type 'mysql': the warehouse must be one of "
        "['postgres', 'redshift'] (PostgreSQL locally, Redshift in production)"
    )
    assert conn.cursor_obj.executed == []
    assert conn.commits == 0


def test_schema_defaults_to_public_when_the_table_has_none():
    operator = make_operator(output_table=Table(name="staging_events", conn_id="warehouse"))
    assert operator.schema == "public"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"missing_keys": "ignore"}, "missing_keys must be 'fail' or 'skip', not 'ignore'"),
        ({"max_rejects": -1}, "max_rejects must be a non-negative integer, not -1"),
        ({"max_rejects": "10"}, "max_rejects must be a non-negative integer, not '10'"),
        ({"max_rejects": 2.5}, "max_rejects must be a non-negative integer, not 2.5"),
        (
            {"incremental": True},  # with make_operator's key_template
            "incremental staging reads a whole prefix: it takes no key_template",
        ),
    ],
)
def test_constructor_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_operator(**kwargs)


def test_the_dialect_argument_is_gone():
    # The connection's type decides now; a DAG still passing dialect= fails to parse.
    invalid = r"(?s)Invalid arguments.*\*\*kwargs: {'dialect': 'redshift'}"
    with pytest.raises(AirflowException, match=invalid):
        make_operator(dialect="redshift")


def test_template_fields_render_the_file_the_table_and_the_key_template():
    assert StageToRedshiftOperator.template_fields == (
        "input_file", "output_table", "key_template", "full_reload", "iam_role",
    )  # fmt: skip
    operator = make_operator(
        input_file=File("s3://{{ params.bucket }}/log_data/", conn_id="aws_conn"),
        output_table=Table(
            name="{{ params.table }}", conn_id="warehouse", metadata=Metadata(schema="public")
        ),
        key_template="log_data/{{ params.folder }}/%Y-%m-%d-events.json",
        full_reload="{{ params.full_reload }}",
    )
    operator.render_template_fields(
        {
            "params": {
                "bucket": "rendered-bucket", "table": "staging_events", "folder": "2018",
                "full_reload": True,
            }
        },
        jinja_env=jinja2.Environment(),
    )  # fmt: skip
    assert operator.input_file.path == "s3://rendered-bucket/log_data/"
    assert operator.output_table.name == "staging_events"
    assert operator.key_template == "log_data/2018/%Y-%m-%d-events.json"
    assert operator.full_reload == "True"
    assert operator._full_reload_requested() is True


def test_s3_client_uses_the_files_connection(monkeypatch):
    from tests.fakes import set_connection

    set_connection(
        monkeypatch, "aws_conn", "aws", login="files-conn-key", password="files-conn-secret",
        extra={"endpoint_url": "http://127.0.0.1:12", "region_name": "us-east-1"},
    )  # fmt: skip
    client = make_operator(max_workers=64)._s3_client()
    assert client.meta.endpoint_url == "http://127.0.0.1:12"
    assert client.meta.config.max_pool_connections == 64


# ----------------------------------------------------------------------------- planning


def test_plan_keys_daily_files_of_the_interval():
    client = s3({DAY1: b"{}", DAY2: b"{}", "log_data/2018/11/2018-11-07-events.json": b"{}"})
    assert make_operator().plan_keys(client, context()) == [DAY1, DAY2]


def test_plan_keys_hourly_interval_stages_that_days_file():
    client = s3({DAY1: b"{}", DAY2: b"{}"})
    start = pendulum.datetime(2018, 11, 5, 13, tz="UTC")
    ctx = {"data_interval_start": start, "data_interval_end": start.add(hours=1)}
    assert make_operator().plan_keys(client, ctx) == [DAY1]


def test_plan_keys_missing_day_fails_listing_the_missing_url():
    client = s3({DAY1: b"{}"})
    with pytest.raises(MissingObjectsError) as info:
        make_operator().plan_keys(client, context())
    message = str(info.value)
    assert f"missing log file(s) s3://{BUCKET}/{DAY2} " in message
    assert DAY1 not in message
    assert "missing_keys='skip'" in message


def test_plan_keys_lists_every_missing_day():
    client = s3({})
    with pytest.raises(MissingObjectsError) as info:
        make_operator().plan_keys(client, context(days=3))
    assert (
        f"missing log file(s) s3://{BUCKET}/{DAY1}, s3://{BUCKET}/{DAY2}, "
        f"s3://{BUCKET}/log_data/2018/11/2018-11-07-events.json"
    ) in str(info.value)


def test_plan_keys_skip_mode_logs_and_continues(caplog):
    client = s3({DAY2: b"{}"})
    with caplog.at_level(logging.WARNING):
        keys = make_operator(missing_keys="skip").plan_keys(client, context())
    assert keys == [DAY2]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert f"missing log file(s) s3://{BUCKET}/{DAY1}; skipped as configured" in warnings[0]


def test_plan_keys_whole_prefix_lists_json_objects():
    operator = make_operator(input_file=File(f"s3://{BUCKET}/song_data/", conn_id="aws_conn"),
                             key_template=None)  # fmt: skip
    client = s3({"song_data/A/B/2.json": b"{}", "song_data/A/A/1.json": b"{}",
                 "song_data/README.md": b"", "log_data/x.json": b"{}"})  # fmt: skip
    assert operator.plan_keys(client, context()) == ["song_data/A/A/1.json", "song_data/A/B/2.json"]


def test_plan_keys_empty_prefix_raises():
    operator = make_operator(input_file=File(f"s3://{BUCKET}/song_data/", conn_id="aws_conn"),
                             key_template=None)  # fmt: skip
    with pytest.raises(MissingObjectsError) as info:
        operator.plan_keys(s3({"song_data/notes.txt": b""}), context())
    assert str(info.value) == f"no .json objects under s3://{BUCKET}/song_data/: nothing to stage"


# ----------------------------------------------------------------------------- both paths
# (the Redshift path's own tests: test_stage_redshift_redshift_path.py)


def test_incremental_runs_on_postgres():
    assert songs_operator(incremental=True).incremental_run is True


def test_only_the_events_are_run_partitioned():
    """staging_events keeps each run's rows apart (its DDL has run_id and staged_at); the
    songs are one mirror of their prefix shared by every run."""
    assert make_operator().run_partitioned is True
    assert songs_operator().run_partitioned is False
    assert songs_operator(incremental=True).run_partitioned is False


@pytest.mark.parametrize(
    ("incremental", "lock"),
    [
        (
            True,
            'LOCK TABLE "public"."staging_manifest", "public"."staging_songs" IN EXCLUSIVE MODE',
        ),
        (False, 'LOCK TABLE "public"."staging_songs" IN EXCLUSIVE MODE'),
    ],
)
def test_a_table_every_run_shares_is_locked_before_it_is_written(monkeypatch, incremental, lock):
    """The song mirror (and its manifest, when incremental) is written by one run at a
    time: the lock is the load's first statement, before it reads or clears anything."""
    song = {"num_songs": 1, "song_id": "SO1", "artist_id": "AR1", "title": "T"}
    client = s3({"song_data/A/TR1.json": lines(song)})
    monkeypatch.setattr(StageToRedshiftOperator, "_s3_client", lambda self: client)

    def respond(sql, params):
        if "information_schema.columns" in sql:
            return Result(rows=list(STAGING_SONGS_INFO))
        return None

    conn = FakeConnection(FakeCursor(respond))
    patch_postgres_hook(monkeypatch, conn)
    songs_operator(incremental=incremental).execute(context())
    statements = conn.cursor_obj.statements
    if incremental:
        # First a look at the manifest without the lock (empty here: all is new), in a
        # transaction of its own; then the load, whose first statement is the lock.
        assert statements[0].startswith('SELECT source_key, etag FROM "public"."staging_manifest"')
        assert conn.events == ["commit", "close", "commit", "close"]
        statements = statements[1:]
    else:
        assert conn.events == ["commit", "close"]  # one transaction: no stale-runs cleanup
    assert statements[0] == lock
    assert [s for s in statements if s.startswith("LOCK")] == [lock]


def test_missing_day_fails_before_touching_the_warehouse(monkeypatch):
    use_connections(monkeypatch, "redshift")
    monkeypatch.setattr(StageToRedshiftOperator, "_s3_client", lambda self: s3({DAY1: b""}))
    conn = FakeConnection()
    asked = patch_postgres_hook(monkeypatch, conn)
    with pytest.raises(MissingObjectsError, match=f"s3://{BUCKET}/{DAY2}"):
        make_operator(iam_role=ROLE).execute(context())
    assert asked == []
    assert conn.cursor_obj.executed == []


# ----------------------------------------------------------------------------- PostgreSQL path


def postgres_cursor() -> FakeCursor:
    def respond(sql, params):
        if "information_schema.columns" in sql:
            assert params == ("public", "staging_events")
            return Result(rows=list(STAGING_EVENTS))
        return None

    return FakeCursor(respond)


def test_postgres_streams_every_line_into_one_copy(monkeypatch, caplog):
    second = {**EVENT, "userId": "", "page": "Home", "artist": None, "ts": 1541106106797}
    client = s3({DAY1: lines(EVENT, second), DAY2: lines({**EVENT, "sessionId": 140}) + b"\n"})
    monkeypatch.setattr(StageToRedshiftOperator, "_s3_client", lambda self: client)
    conn = FakeConnection(postgres_cursor())
    patch_postgres_hook(monkeypatch, conn)

    with caplog.at_level(logging.INFO):
        make_operator(max_workers=2).execute(context())

    cursor = conn.cursor_obj
    columns_read = (read_sql("table_columns"), ("public", "staging_events"))
    # First a short transaction of its own: other runs' day-old rows (and rows of no run)
    # go; then the load's, with no lock: it replaces only this run's rows, never the table.
    assert cursor.executed[:2] == [columns_read, (STALE_RUNS, cursor.executed[1][1])]
    stale = cursor.executed[1][1]
    assert stale["run_id"] == RUN_ID
    assert stale["stale_before"] < datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=23)
    assert cursor.executed[2:] == [
        columns_read,  # once per transaction: the load's COPY takes these columns
        RUN_ROWS,
        DELETE_COUNTS,  # this run's earlier counts, of any object (not other runs')
        DELETE_REJECTS,  # this run's earlier rejects, none new
    ]
    assert not [s for s in cursor.statements if s.startswith(("LOCK", "TRUNCATE"))]
    assert conn.events == ["commit", "close", "commit", "close"]
    ((statement, counted),) = cursor.executemany_calls
    assert statement == (
        'INSERT INTO "public"."staging_counts" '
        "(table_name, source_key, hour_start, plays, run_id, counted_at) "
        "VALUES (%s, %s, %s, %s, %s, %s)"
    )
    # one NextSong per object at 2018-11-01T21:01:46.796Z; the logged-out Home is no play
    assert [row[:5] for row in counted] == [
        ("staging_events", DAY1, datetime(2018, 11, 1, 21), 1, RUN_ID),
        ("staging_events", DAY2, datetime(2018, 11, 1, 21), 1, RUN_ID),
    ]
    columns = ", ".join(f'"{row[0]}"' for row in STAGING_EVENTS)
    (copy,) = cursor.copies
    assert copy.startswith(f"COPY {TABLE} ({columns}) FROM STDIN")
    rows = parse_copy(cursor.copied, STAGING_EVENTS)
    assert len(rows) == 3
    # every row is named after the run, staged at one moment of this load
    assert {r[RUN_FIELD] for r in rows} == {RUN_ID}
    (staged_at,) = {r[STAGED_AT_FIELD] for r in rows}
    load_started = stale["stale_before"] + timedelta(days=1)
    assert timedelta(0) <= datetime.fromisoformat(staged_at) - load_started < timedelta(minutes=1)
    by_ts_session = {(r[15], r[12]): r for r in rows}
    first = by_ts_session[("1541106106796", "139")]
    assert first == (
        "Des'ree", "Logged In", "Kaylee", "F", "1", "Summers", "246.30812", "free",
        "Phoenix-Mesa-Scottsdale, AZ", "PUT", "NextSong", "1540344794796.0", "139",
        "You Gotta Be", "200", "1541106106796", '"Mozilla/5.0"', "8", DAY1, RUN_ID, staged_at,
    )  # fmt: skip
    assert by_ts_session[("1541106106797", "139")][0] is None
    assert by_ts_session[("1541106106797", "139")][17] == ""
    assert ("1541106106796", "140") in by_ts_session
    assert (
        f"Staged 3 rows from 2 object(s) of s3://{BUCKET} into {TABLE} for run {RUN_ID}"
        in caplog.text
    )


def test_postgres_bad_record_fails_the_task_naming_the_object_and_line(monkeypatch):
    client = s3({DAY1: lines(EVENT), DAY2: lines(EVENT, {**EVENT, "ts": "abc"})})
    monkeypatch.setattr(StageToRedshiftOperator, "_s3_client", lambda self: client)
    conn = FakeConnection(postgres_cursor())
    patch_postgres_hook(monkeypatch, conn)

    with pytest.raises(AirflowException) as info:
        make_operator().execute(context())

    assert str(info.value) == (
        f"staging s3://{BUCKET}/ into {TABLE} failed, nothing was loaded: "
        f"more than 0 bad record(s) (max_rejects); first: {DAY2} line 2: "
        "ts must be an integer, got 'abc'"
    )
    assert conn.cursor_obj.executemany_calls == []
    # only the stale runs' cleanup, in its own transaction, is committed: the run's rows
    # as they were (its DELETE is rolled back with the COPY)
    assert conn.events == ["commit", "close", "rollback", "close"]
    assert RUN_ROWS in conn.cursor_obj.executed


def test_postgres_rejects_within_the_limit_are_recorded_and_the_rest_loads(monkeypatch, caplog):
    too_long = {**EVENT, "gender": "Female, 42"}  # VARCHAR(8)
    client = s3({
        DAY1: lines(EVENT) + b"{broken\n" + lines({**EVENT, "sessionId": 2}),
        DAY2: lines(too_long, {**EVENT, "sessionId": 3}),
    })  # fmt: skip
    monkeypatch.setattr(StageToRedshiftOperator, "_s3_client", lambda self: client)
    conn = FakeConnection(postgres_cursor())
    patch_postgres_hook(monkeypatch, conn)
    before = datetime.now(UTC).replace(tzinfo=None)

    operator = make_operator(max_rejects=2)
    with caplog.at_level(logging.INFO):
        operator.execute(context())

    cursor = conn.cursor_obj
    rows = parse_copy(cursor.copied, STAGING_EVENTS)
    assert sorted(r[12] for r in rows) == ["139", "2", "3"]  # session ids of the good rows
    assert cursor.executed[5] == DELETE_REJECTS  # after the counts' DELETE
    _counts, (statement, recorded) = cursor.executemany_calls
    assert statement == (
        f"INSERT INTO {REJECTS} "
        "(run_id, table_name, source_key, line_number, reason, raw_line, rejected_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s)"
    )
    assert [row[:4] for row in recorded] == [
        (RUN_ID, "staging_events", DAY1, 2),
        (RUN_ID, "staging_events", DAY2, 1),
    ]
    assert recorded[0][4].startswith("malformed JSON (")
    assert recorded[0][5] == "{broken"
    assert recorded[1][4] == "gender is 10 bytes of UTF-8, longer than the column's 8"
    assert recorded[1][5] == json.dumps(too_long)
    assert all(before <= row[6] <= datetime.now(UTC).replace(tzinfo=None) for row in recorded)
    assert conn.events == ["commit", "close", "commit", "close"]
    set_aside = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.getMessage().startswith("Set aside")
    ]
    assert set_aside == [
        f"Set aside 2 bad record(s) in staging_rejects, first: {DAY1} line 2: " + recorded[0][4]
    ]
    assert f"Staged 3 rows from 2 object(s) of s3://{BUCKET} into {TABLE}" in caplog.text


def test_postgres_one_reject_too_many_fails_naming_them(monkeypatch):
    client = s3({DAY1: b"[1]\n{}\n" + lines(EVENT), DAY2: lines({**EVENT, "length": "x"})})
    monkeypatch.setattr(StageToRedshiftOperator, "_s3_client", lambda self: client)
    conn = FakeConnection(postgres_cursor())
    patch_postgres_hook(monkeypatch, conn)
    with pytest.raises(AirflowException) as info:
        make_operator(max_rejects=2).execute(context())
    message = str(info.value)
    assert message.startswith(
        f"staging s3://{BUCKET}/ into {TABLE} failed, nothing was loaded: "
        "more than 2 bad record(s) (max_rejects); first: "
    )
    assert f"{DAY1} line 1: expected a JSON object, got list" in message
    assert f"{DAY1} line 2: required field 'ts' is missing or null" in message
    assert conn.cursor_obj.executemany_calls == []
    assert conn.events == ["commit", "close", "rollback", "close"]


def test_s3_listing_error_fails_before_the_warehouse_naming_bucket_and_connection(monkeypatch):
    from botocore.exceptions import EndpointConnectionError

    client = FakeS3Client(
        {BUCKET: {}},
        list_error=EndpointConnectionError(endpoint_url="http://127.0.0.1:8002/sparkify-test"),
        endpoint_url="http://127.0.0.1:8002",
    )
    monkeypatch.setattr(StageToRedshiftOperator, "_s3_client", lambda self: client)
    asked = patch_postgres_hook(monkeypatch, FakeConnection())
    with pytest.raises(AirflowException) as info:
        make_operator().execute(context())
    message = str(info.value)
    assert f"s3://{BUCKET}" in message
    assert "'aws_conn'" in message
    assert "http://127.0.0.1:8002" in message
    assert 'Could not connect to the endpoint URL: "http://127.0.0.1:8002/sparkify-test"' in message
    assert isinstance(info.value.__cause__, EndpointConnectionError)
    assert asked == []


def test_skip_mode_with_no_file_stages_nothing(monkeypatch):
    monkeypatch.setattr(StageToRedshiftOperator, "_s3_client", lambda self: s3({}))
    conn = FakeConnection(postgres_cursor())
    patch_postgres_hook(monkeypatch, conn)
    make_operator(missing_keys="skip").execute(context(days=1))
    # the run's rows are replaced by none: other runs' rows stay
    columns_read = read_sql("table_columns")
    assert conn.cursor_obj.statements == [columns_read, STALE_RUNS, columns_read, RUN_ROWS[0]]
    assert conn.cursor_obj.copies == []
    assert conn.commits == 2


def test_max_rejects_refuses_booleans():
    with pytest.raises(ValueError, match="max_rejects must be a non-negative integer"):
        StageToRedshiftOperator(
            task_id="t",
            input_file=File("s3://bucket-1/log_data/", conn_id="aws"),
            output_table=Table(name="staging_events", conn_id="pg"),
            max_rejects=True,
        )
