"""StageToRedshiftOperator on a Redshift warehouse connection, with a fake S3 client and a
fake Redshift cursor: exact keys through manifests, credentials never logged, and what
Redshift skipped or a staging rule refused recorded in staging_rejects."""

from __future__ import annotations

import json
import logging
from typing import Any

import pendulum
import pytest
from airflow.exceptions import AirflowException
from botocore.credentials import ReadOnlyCredentials

from operators.stage_redshift import StageToRedshiftOperator
from sparkify.sql import read_sql
from tests.fakes import (
    STAGING_BUCKET,
    STAGING_EVENTS_INFO,
    STAGING_SONGS_INFO,
    FakeConnection,
    FakeCursor,
    FakeS3Client,
    Result,
    patch_postgres_hook,
    record_connection_lookups,
    set_connection,
)
from tests.fakes import events_staging_operator as events_operator
from tests.fakes import songs_staging_operator as songs_operator

BUCKET = STAGING_BUCKET
ROLE = "arn:aws:iam::123456789012:role/sparkifySecretRole"
DAY1 = "log_data/2018/11/2018-11-05-events.json"
DAY2 = "log_data/2018/11/2018-11-06-events.json"
RUN_ID = "scheduled__2018-11-05T00:00:00+00:00"
MANIFESTS = "_sparkify/manifests/scheduled__2018-11-05T00_00_00_00_00"
EVENTS = '"public"."staging_events"'
SONGS = '"public"."staging_songs"'
REJECTS = '"public"."staging_rejects"'
NEEDED = " (needed when page = 'NextSong')"
EVENT_INFO = STAGING_EVENTS_INFO
# What COPY fills: the load names the rows' object and run afterwards.
EVENT_NAMES = [row[0] for row in EVENT_INFO if row[0] not in ("source_key", "run_id", "staged_at")]
COUNTS = '"public"."staging_counts"'
SONG_INFO = STAGING_SONGS_INFO
NOV5 = pendulum.datetime(2018, 11, 5, tz="UTC")


def context(days: int = 2) -> dict:
    return {"data_interval_start": NOV5, "data_interval_end": NOV5.add(days=days), "run_id": RUN_ID}


class Redshift:
    """Answers a load as Redshift would: per COPY (query id, rows loaded); per query id the
    load-error view's rows; per rule pass the rows breaking a rule."""

    def __init__(
        self,
        copies: list[tuple[int, int]],
        load_errors: dict[int, list[tuple]] | None = None,
        broken: list[list[tuple]] | None = None,
        fail_copy: Exception | None = None,
    ) -> None:
        self.copies = list(copies)
        self.load_errors = load_errors or {}
        self.broken = list(broken or [])
        self.fail_copy = fail_copy
        self.cursor = FakeCursor(self.respond)

    def respond(self, statement: str, params: Any) -> Result | None:
        if "information_schema.columns" in statement:
            return Result(rows=SONG_INFO if params[1] == "staging_songs" else EVENT_INFO)
        if statement.startswith("COPY") and self.fail_copy is not None:
            raise self.fail_copy
        if statement == "SELECT pg_last_copy_id(), pg_last_copy_count()":
            return Result(rows=[self.copies.pop(0)])
        if "FROM stl_load_errors" in statement or "FROM sys_load_error_detail" in statement:
            return Result(rows=self.load_errors.get(params["query_id"], []))
        if statement.startswith("SELECT CASE"):
            return Result(rows=self.broken.pop(0) if self.broken else [])
        return None


@pytest.fixture
def s3(monkeypatch) -> FakeS3Client:
    client = FakeS3Client(
        {BUCKET: {DAY1: b"", DAY2: b"", f"{DAY1}.bak": b"", "log_data/x.txt": b""}}
    )
    monkeypatch.setattr(StageToRedshiftOperator, "_s3_client", lambda self: client)
    return client


PROVISIONED = "sparkify.c1abc2def3gh.us-west-2.redshift.amazonaws.com"


def on_redshift(
    monkeypatch, redshift: Redshift, host: str = PROVISIONED, extra: dict | None = None
) -> FakeConnection:
    set_connection(monkeypatch, "warehouse", "redshift", host=host, extra=extra or {})
    set_connection(monkeypatch, "aws_conn", "aws", extra={"region_name": "us-west-2"})
    conn = FakeConnection(redshift.cursor)
    patch_postgres_hook(monkeypatch, conn)
    return conn


def copy_statement(
    table: str, columns: list[str], manifest: str, credentials: str, max_errors: int = 0
) -> str:
    return (
        f"COPY {table} ({', '.join(chr(34) + c + chr(34) for c in columns)})\n"
        f"FROM 's3://{BUCKET}/{manifest}'\n"
        f"{credentials}\n"
        "MANIFEST\n"
        "FORMAT AS JSON 'auto ignorecase'\n"
        "REGION 'us-west-2'\n"
        "TIMEFORMAT 'epochmillisecs'\n"
        f"MAXERROR {max_errors}\n"
        "COMPUPDATE OFF STATUPDATE OFF"
    )


# ----------------------------------------------------------------------------- keys


def test_each_daily_key_is_copied_exactly_through_its_own_manifest(monkeypatch, s3, caplog):
    redshift = Redshift(copies=[(11, 120), (12, 80)])
    conn = on_redshift(monkeypatch, redshift)
    with caplog.at_level(logging.INFO):
        result = events_operator(iam_role=ROLE).execute(context())

    assert result.name == "staging_events"
    role = f"IAM_ROLE '{ROLE}'"
    manifests = [f"{MANIFESTS}/staging_events/{day}.manifest" for day in (DAY1, DAY2)]
    copies = [s for s in redshift.cursor.statements if s.startswith("COPY")]
    assert copies == [copy_statement(EVENTS, EVENT_NAMES, m, role) for m in manifests]
    # the manifests name the day files only: not "<day>.json.bak", which a COPY FROM the
    # day's key would also load (a key is a prefix there)
    assert {c["Key"]: json.loads(c["Body"]) for c in s3.put_calls} == {
        m: {"entries": [{"url": f"s3://{BUCKET}/{day}", "mandatory": True}]}
        for m, day in zip(manifests, (DAY1, DAY2), strict=True)
    }
    executed = redshift.cursor.executed
    # Every table the load writes is locked first, in name order: no serializable-isolation
    # abort, and the NULL marks of the rows a COPY just loaded are this run's.
    assert executed[0] == (f"LOCK {COUNTS}, {EVENTS}, {REJECTS}", None)
    # Under the lock: other runs' day-old rows (and rows of no run) go, then this run's.
    stale, own = executed[2], executed[3]
    assert stale[0] == (
        f"DELETE FROM {EVENTS} "
        "WHERE run_id IS NULL OR (staged_at < %(stale_before)s AND run_id <> %(run_id)s)"
    )
    assert stale[1]["run_id"] == RUN_ID
    assert own == (f"DELETE FROM {EVENTS} WHERE run_id = %(run_id)s", {"run_id": RUN_ID})
    assert not [s for s, _ in executed if s in (f"DELETE FROM {EVENTS}", f"TRUNCATE {EVENTS}")]
    # The run's counts are cleared once, then each key's rows are named and counted.
    deletes = [e for e in executed if e[0].startswith(f"DELETE FROM {COUNTS}")]
    assert deletes == [
        (
            f"DELETE FROM {COUNTS} WHERE table_name = %(table_name)s AND run_id = %(run_id)s",
            {"table_name": "staging_events", "run_id": RUN_ID},
        )
    ]
    assert executed.index(deletes[0]) < [s for s, _ in executed].index(copies[0])
    updates = [(s, p) for s, p in executed if s.startswith("UPDATE")]
    assert [s for s, _ in updates] == [
        f"UPDATE {EVENTS} SET source_key = %(source_key)s, run_id = %(run_id)s, "
        "staged_at = %(staged_at)s WHERE source_key IS NULL"
    ] * 2
    assert [(p["source_key"], p["run_id"]) for _, p in updates] == [(DAY1, RUN_ID), (DAY2, RUN_ID)]
    counted = [s for s, _ in executed if s.startswith(f"INSERT INTO {COUNTS}")]
    assert len(counted) == 2
    per_run = "WHERE source_key = %(source_key)s AND run_id = %(run_id)s AND"
    assert all(per_run in s for s in counted)
    assert conn.events == ["commit", "close"]
    assert ROLE not in caplog.text and "sparkifySecretRole" not in caplog.text
    assert (
        f"FROM 's3://{BUCKET}/{manifests[0]}'\n<credentials>\nMANIFEST\nFORMAT AS JSON"
        in caplog.text
    )
    assert (
        f"Staged 200 rows from 2 object(s) of s3://{BUCKET} into {EVENTS} for run {RUN_ID}"
        in caplog.text
    )


def test_the_song_prefix_is_one_copy_of_a_manifest_of_its_json_objects(monkeypatch):
    keys = ["song_data/A/A/A/TRAAA1.json", "song_data/A/B/C/TRABC2.json"]
    client = FakeS3Client({BUCKET: {**dict.fromkeys(keys, b"{}"), "song_data/README.md": b""}})
    monkeypatch.setattr(StageToRedshiftOperator, "_s3_client", lambda self: client)
    redshift = Redshift(copies=[(5, 2)])
    on_redshift(monkeypatch, redshift)

    # incremental is a PostgreSQL-path feature: Redshift reloads the prefix every run
    songs_operator(iam_role=ROLE, incremental=True).execute(context())

    manifest = f"{MANIFESTS}/staging_songs.manifest"
    names = [row[0] for row in SONG_INFO[:-1]]
    statements = redshift.cursor.statements
    # a table every run shares, replaced whole: locked with the rejects table it writes
    assert statements[:4] == [
        f"LOCK {REJECTS}, {SONGS}",
        read_sql("table_columns"),
        f"DELETE FROM {SONGS}",
        read_sql("table_columns"),
    ]
    assert statements[4] == copy_statement(SONGS, names, manifest, f"IAM_ROLE '{ROLE}'")
    (put,) = client.put_calls
    assert [e["url"] for e in json.loads(put["Body"])["entries"]] == [
        f"s3://{BUCKET}/{k}" for k in keys
    ]
    assert not [s for s in statements if "staging_manifest" in s or "staging_counts" in s]
    assert redshift.cursor.executemany_calls == []  # no rejects, no manifest rows


def test_access_keys_are_used_without_a_role_and_never_logged(monkeypatch, s3, caplog):
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY"
    monkeypatch.setattr(
        S3Hook, "get_credentials",
        lambda self, region_name=None: ReadOnlyCredentials("AKIAFAKEKEY", secret, "FwoGSESSION"),
    )  # fmt: skip
    redshift = Redshift(copies=[(1, 7)])
    on_redshift(monkeypatch, redshift)
    with caplog.at_level(logging.DEBUG):
        events_operator().execute(context(days=1))

    credentials = (
        "CREDENTIALS 'aws_access_key_id=AKIAFAKEKEY;"
        f"aws_secret_access_key={secret};token=FwoGSESSION'"
    )
    manifest = f"{MANIFESTS}/staging_events/{DAY1}.manifest"
    copies = [s for s in redshift.cursor.statements if s.startswith("COPY")]
    assert copies == [copy_statement(EVENTS, EVENT_NAMES, manifest, credentials)]
    for leaked in (secret, "AKIAFAKEKEY", "FwoGSESSION", "aws_secret_access_key"):
        assert leaked not in caplog.text
    assert "<credentials>" in caplog.text


def test_explicit_region_json_paths_and_max_rejects_reach_the_copy(monkeypatch, s3):
    redshift = Redshift(copies=[(1, 1)])
    on_redshift(monkeypatch, redshift)
    events_operator(
        iam_role=ROLE, region="eu-west-1", max_rejects=3,
        json_paths=f"s3://{BUCKET}/log_json_path.json",
    ).execute(context(days=1))  # fmt: skip
    (copy,) = [s for s in redshift.cursor.statements if s.startswith("COPY")]
    assert copy.endswith(
        f"MANIFEST\nFORMAT AS JSON 's3://{BUCKET}/log_json_path.json'\nREGION 'eu-west-1'\n"
        "TIMEFORMAT 'epochmillisecs'\nMAXERROR 3\nCOMPUPDATE OFF STATUPDATE OFF"
    )


def test_a_failed_copy_rolls_back_everything(monkeypatch, s3):
    failure = RuntimeError("Load into table 'staging_events' failed. Check 'stl_load_errors'")
    conn = on_redshift(monkeypatch, Redshift(copies=[], fail_copy=failure))
    with pytest.raises(RuntimeError, match="stl_load_errors"):
        events_operator(iam_role=ROLE).execute(context(days=1))
    assert conn.events == ["rollback", "close"]


# ----------------------------------------------------------------------------- rejects


def test_skipped_and_rule_breaking_rows_are_recorded_with_file_line_and_reason(
    monkeypatch, s3, caplog
):
    redshift = Redshift(
        copies=[(31, 50), (32, 40)],
        load_errors={
            31: [(f"s3://{BUCKET}/{DAY1}", 17, "ts", 1207, "Invalid digit, Value 'x', Pos 0",
                  '{"ts": "x"}')],
            32: [(f"s3://{BUCKET}/{DAY2}", 3, "gender", 1204, "String length exceeds DDL length",
                  '{"gender": "Female, 42"}')],
        },
        broken=[[], [(0, *[None if n == "userid" else "v" for n in EVENT_NAMES])]],
    )  # fmt: skip
    conn = on_redshift(monkeypatch, redshift)
    with caplog.at_level(logging.INFO):
        events_operator(iam_role=ROLE, max_rejects=5).execute(context())

    cursor = redshift.cursor
    assert (
        f"DELETE FROM {REJECTS} WHERE run_id = %(run_id)s AND table_name = %(table_name)s",
        {"run_id": RUN_ID, "table_name": "staging_events"},
    ) in cursor.executed
    ((statement, recorded),) = cursor.executemany_calls
    assert statement.startswith(f"INSERT INTO {REJECTS} ")
    raw_rule = json.dumps({n: None if n == "userid" else "v" for n in EVENT_NAMES})
    assert [row[:6] for row in recorded] == [
        (RUN_ID, "staging_events", DAY1, 17,
         "Invalid digit, Value 'x', Pos 0 (column ts, Redshift load error 1207)", '{"ts": "x"}'),
        (RUN_ID, "staging_events", DAY2, None, "userid is missing or null" + NEEDED, raw_rule),
        (RUN_ID, "staging_events", DAY2, 3,
         "String length exceeds DDL length (column gender, Redshift load error 1204)",
         '{"gender": "Female, 42"}'),
    ]  # fmt: skip
    assert conn.events == ["commit", "close"]
    assert f"Staged 89 rows from 2 object(s) of s3://{BUCKET} into {EVENTS}" in caplog.text
    assert (
        f"Set aside 3 bad record(s) in staging_rejects, first: {DAY1} line 17: Invalid digit"
        in caplog.text
    )


def test_on_serverless_the_sys_view_is_read(monkeypatch, s3):
    redshift = Redshift(copies=[(77, 1)])
    on_redshift(
        monkeypatch, redshift, host="etl.123456789012.us-west-2.redshift-serverless.amazonaws.com"
    )
    events_operator(iam_role=ROLE).execute(context(days=1))
    assert (read_sql("redshift_load_errors_sys"), {"query_id": 77, "limit": 1}) in (
        redshift.cursor.executed
    )
    assert not [s for s in redshift.cursor.statements if "stl_load_errors" in s]


def test_more_rejects_than_tolerated_fail_the_task_and_keep_nothing(monkeypatch, s3):
    redshift = Redshift(
        copies=[(1, 9)],
        broken=[[(3, *["abc" if n == "userid" else 1 for n in EVENT_NAMES])] * 2],
    )
    conn = on_redshift(monkeypatch, redshift)
    with pytest.raises(AirflowException) as info:
        events_operator(iam_role=ROLE, max_rejects=1).execute(context(days=1))
    assert str(info.value) == (
        f"staging s3://{BUCKET}/ into {EVENTS} failed, nothing was loaded: more than 1 bad "
        f"record(s) (max_rejects); first: {DAY1}: userid is not a whole number up to "
        f"2147483647{NEEDED}; {DAY1}: userid is not a whole number up to 2147483647{NEEDED}"
    )
    assert redshift.cursor.executemany_calls == []
    assert conn.events == ["rollback", "close"]


def test_the_warehouse_connection_is_looked_up_for_its_type_and_host(monkeypatch, s3):
    redshift = Redshift(copies=[(1, 1)])
    on_redshift(monkeypatch, redshift, extra={"redshift-serverless": True})
    asked = record_connection_lookups(monkeypatch)
    events_operator(iam_role=ROLE).execute(context(days=1))
    assert asked.count("warehouse") == 2  # its type (the path), then host and extra (the view)
    assert "FROM sys_load_error_detail" in redshift.cursor.statements[8]
