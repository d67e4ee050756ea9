"""Unit tests for sparkify.redshift_copy: manifests, the statements of a Redshift load, and
the rows it sets aside (skipped by COPY, or breaking a staging rule).

Redshift itself is a fake cursor answering as Redshift would. The SQL that only needs
what PostgreSQL and Redshift share (the rule pass, naming the object, the play counts)
also runs for real on the local stack's PostgreSQL, against the same records the
PostgreSQL loader is given, which must be refused alike.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sparkify import redshift_copy
from sparkify.json_encode import RowEncoder, encode_object
from sparkify.redshift_copy import (
    ManifestError,
    RedshiftLoad,
    RedshiftStaging,
    load_errors_view,
    manifest_body,
    manifest_key,
)
from sparkify.sql import read_sql
from sparkify.staging_rejects import Reject, RejectCollector, TooManyRejectsError
from sparkify.staging_rules import RULES
from tests.fakes import (
    STAGING_EVENTS_INFO,
    STAGING_SONGS_INFO,
    FakeCursor,
    FakeS3Client,
    Result,
    logged_out_event,
    play_event,
    song_record,
    without,
)

BUCKET = "sparkify-test"
RUN_ID = "scheduled__2018-11-01T00:00:00+00:00"
RUN_FOLDER = "_sparkify/manifests/scheduled__2018-11-01T00_00_00_00_00"
ROLE = "IAM_ROLE 'arn:aws:iam::123456789012:role/sparkifySecretRole'"
DAY1 = "log_data/2018/11/2018-11-01-events.json"
DAY2 = "log_data/2018/11/2018-11-02-events.json"
EVENTS = '"public"."staging_events"'
SONGS = '"public"."staging_songs"'
NEEDED = " (needed when page = 'NextSong')"
NUMBER = "userid is not a whole number up to 2147483647" + NEEDED
EVENT_INFO = STAGING_EVENTS_INFO
# What COPY fills: the load names the rows' object and run afterwards.
LOAD_FILLED = ("source_key", "run_id", "staged_at")
EVENT_NAMES = [row[0] for row in EVENT_INFO if row[0] not in LOAD_FILLED]
SONG_INFO = STAGING_SONGS_INFO
SONG_NAMES = [row[0] for row in SONG_INFO[:-1]]


def settings(table: str = "staging_events", **overrides: Any) -> RedshiftStaging:
    values: dict[str, Any] = {
        "schema": "public", "table_name": table, "bucket": BUCKET, "credentials": ROLE,
        "run_id": RUN_ID, "region": "us-west-2", "max_rejects": 5,
    }  # fmt: skip
    return RedshiftStaging(**{**values, **overrides})


class Redshift:
    """A responder answering a load's statements as Redshift would.

    :param copies: per COPY, in order: (query id, rows loaded).
    :param load_errors: query id -> the load-error view's rows for it.
    :param broken: per rule pass, in order: the rows breaking a rule.
    :param columns: information_schema's rows for the table.
    """

    def __init__(
        self,
        copies: list[tuple[int, int]],
        load_errors: dict[int, list[tuple]] | None = None,
        broken: list[list[tuple]] | None = None,
        columns: list[tuple] = EVENT_INFO,
    ) -> None:
        self.copies = list(copies)
        self.load_errors = load_errors or {}
        self.broken = list(broken or [])
        self.columns = list(columns)
        self.cursor = FakeCursor(self.respond)

    def respond(self, statement: str, params: Any) -> Result | None:
        if "information_schema.columns" in statement:
            return Result(rows=list(self.columns))
        if " ADD COLUMN " in statement:  # the table has it from now on, as the DDL says
            name = statement.split(" ADD COLUMN ")[1].split()[0].strip('"')
            info = {row[0]: row for row in [*EVENT_INFO, *SONG_INFO]}
            self.columns.append(info[name])
        if statement == "SELECT pg_last_copy_id(), pg_last_copy_count()":
            return Result(rows=[self.copies.pop(0)])
        if "FROM stl_load_errors" in statement or "FROM sys_load_error_detail" in statement:
            return Result(rows=self.load_errors.get(params["query_id"], []))
        if statement.startswith("SELECT CASE"):
            return Result(rows=self.broken.pop(0) if self.broken else [])
        return None


def events_copy(manifest: str) -> str:
    return (
        f"COPY {EVENTS} ({', '.join(f'{chr(34)}{n}{chr(34)}' for n in EVENT_NAMES)})\n"
        f"FROM 's3://{BUCKET}/{manifest}'\n"
        f"{ROLE}\n"
        "MANIFEST\n"
        "FORMAT AS JSON 'auto ignorecase'\n"
        "REGION 'us-west-2'\n"
        "TIMEFORMAT 'epochmillisecs'\n"
        "MAXERROR 5\n"
        "COMPUPDATE OFF STATUPDATE OFF"
    )


# ----------------------------------------------------------------------------- choices


@pytest.mark.parametrize(
    ("host", "extra", "view"),
    [
        ("sparkify.c1abc2def3gh.us-west-2.redshift.amazonaws.com", {}, "stl"),
        ("etl.123456789012.us-west-2.redshift-serverless.amazonaws.com", {}, "sys"),
        ("ETL.123456789012.cn-north-1.Redshift-Serverless.amazonaws.com.cn", {}, "sys"),
        ("10.0.0.5", {"redshift-serverless": True}, "sys"),  # a private endpoint, flagged
        ("10.0.0.5", {"redshift-serverless": "true"}, "sys"),
        ("10.0.0.5", {"redshift-serverless": "false"}, "stl"),
        (None, {}, "stl"),
    ],
)
def test_the_load_error_view_follows_the_warehouse_connection(host, extra, view):
    assert load_errors_view(host, extra) == view


def test_manifests_live_under_a_private_prefix_named_after_the_run():
    assert manifest_key(RUN_ID, "staging_songs") == f"{RUN_FOLDER}/staging_songs.manifest"
    assert manifest_key(RUN_ID, "staging_events", DAY1) == (
        f"{RUN_FOLDER}/staging_events/{DAY1}.manifest"
    )
    # a key or run id with characters a COPY literal refuses still gives a usable name
    assert manifest_key("manual__it's", "t", "a/b's\\c.json") == (
        "_sparkify/manifests/manual__it_s/t/a/b_s_c.json.manifest"
    )


def test_a_manifest_lists_exactly_the_keys_each_mandatory():
    assert json.loads(manifest_body(BUCKET, [DAY1, "song_data/A/ß.json"])) == {
        "entries": [
            {"url": f"s3://{BUCKET}/{DAY1}", "mandatory": True},
            {"url": f"s3://{BUCKET}/song_data/A/ß.json", "mandatory": True},
        ]
    }


# ----------------------------------------------------------------------------- statements


def test_events_are_copied_one_exact_key_at_a_time_then_named_and_counted(caplog):
    redshift = Redshift(copies=[(101, 3)])
    client = FakeS3Client({BUCKET: {}})
    with caplog.at_level(logging.INFO):
        load = redshift_copy.stage(redshift.cursor, client, settings(), [DAY1])

    assert load == RedshiftLoad(rows=3, copies=1, rejects=[])
    manifest = f"{RUN_FOLDER}/staging_events/{DAY1}.manifest"
    assert [(c["Key"], json.loads(c["Body"])) for c in client.put_calls] == [
        (manifest, {"entries": [{"url": f"s3://{BUCKET}/{DAY1}", "mandatory": True}]})
    ]
    statements = redshift.cursor.executed
    assert [s for s, _ in statements[:6]] == [
        read_sql("table_columns"),
        # the run's earlier counts go once, before the first COPY (not per object: other
        # runs' counts of the same object, hourly runs of one day file, stay)
        'DELETE FROM "public"."staging_counts" '
        "WHERE table_name = %(table_name)s AND run_id = %(run_id)s",
        events_copy(manifest),
        "SELECT pg_last_copy_id(), pg_last_copy_count()",
        read_sql("redshift_load_errors_stl"),
        statements[5][0],  # the rule pass, below
    ]
    assert statements[0][1] == ("public", "staging_events")
    assert statements[1][1] == {"table_name": "staging_events", "run_id": RUN_ID}
    assert statements[4][1] == {"query_id": 101, "limit": 6}
    assert statements[5][0].startswith("SELECT CASE WHEN \"page\" = 'NextSong' AND ")
    assert statements[5][0].endswith(
        f'FROM {EVENTS} WHERE source_key IS NULL AND (("page" = \'NextSong\' AND "userid" IS '
        'NULL) OR ("page" = \'NextSong\' AND "sessionid" IS NULL) OR ("page" = \'NextSong\' '
        'AND "iteminsession" IS NULL) OR ("page" = \'NextSong\' AND "userid" IS NOT NULL AND '
        "NOT (\"userid\" ~ '^[0-9]+$' AND (LENGTH(LTRIM(\"userid\", '0')) < 10 OR "
        "(LENGTH(LTRIM(\"userid\", '0')) = 10 AND LTRIM(\"userid\", '0') <= '2147483647'))))) "
        "LIMIT %(limit)s"
    )
    # the rows just copied are named after their object and their run
    update, named = statements[6]
    assert update == (
        f"UPDATE {EVENTS} SET source_key = %(source_key)s, run_id = %(run_id)s, "
        "staged_at = %(staged_at)s WHERE source_key IS NULL"
    )
    assert {k: v for k, v in named.items() if k != "staged_at"} == {
        "source_key": DAY1, "run_id": RUN_ID,
    }  # fmt: skip
    assert isinstance(named["staged_at"], datetime) and named["staged_at"].tzinfo is None
    counts = statements[7][1]
    assert statements[7] == (
        'INSERT INTO "public"."staging_counts" '
        "(table_name, source_key, hour_start, plays, run_id, counted_at) "
        "SELECT %(table_name)s, %(source_key)s, "
        "TIMESTAMP 'epoch' + hour_number * 3600 * INTERVAL '1 second', COUNT(*), "
        "%(run_id)s, %(counted_at)s "
        'FROM (SELECT DISTINCT "userid", "sessionid", "iteminsession", "ts" / 3600000 AS '
        f"hour_number FROM {EVENTS} WHERE source_key = %(source_key)s AND run_id = %(run_id)s "
        "AND \"page\" = 'NextSong') AS plays GROUP BY hour_number",
        counts,
    )
    assert {k: v for k, v in counts.items() if k != "counted_at"} == {
        "table_name": "staging_events", "source_key": DAY1, "run_id": RUN_ID,
    }  # fmt: skip
    assert isinstance(counts["counted_at"], datetime)
    assert len(statements) == 8  # no rule breakers: nothing to delete
    assert "sparkifySecretRole" not in caplog.text
    assert f"FROM 's3://{BUCKET}/{manifest}'\n<credentials>\nMANIFEST" in caplog.text


def test_songs_are_one_copy_of_a_manifest_of_every_key_and_are_not_counted():
    keys = ["song_data/A/A/A/TRAAAAK128F9318786.json", "song_data/A/A/B/TRAABJL12903CDCF1A.json"]
    redshift = Redshift(copies=[(7, 2)], columns=SONG_INFO)
    client = FakeS3Client({BUCKET: {}})
    load = redshift_copy.stage(redshift.cursor, client, settings("staging_songs"), keys)

    assert load == RedshiftLoad(rows=2, copies=1, rejects=[])
    manifest = f"{RUN_FOLDER}/staging_songs.manifest"
    (put,) = client.put_calls
    assert (put["Key"], put["ContentType"]) == (manifest, "application/json")
    assert [e["url"] for e in json.loads(put["Body"])["entries"]] == [
        f"s3://{BUCKET}/{k}" for k in keys
    ]
    statements = redshift.cursor.statements
    assert statements[1].startswith(
        f'COPY {SONGS} ("num_songs", "artist_id", "artist_latitude", "artist_longitude", '
        '"artist_location", "artist_name", "song_id", "title", "duration", "year")\n'
        f"FROM 's3://{BUCKET}/{manifest}'\n{ROLE}\nMANIFEST\n"
    )
    assert statements[4].startswith('SELECT CASE WHEN "song_id" IS NULL THEN 0 WHEN')
    # the rows stay without a key (one COPY cannot tell them apart), nothing is counted
    assert len(statements) == 5


def test_a_table_created_before_source_key_and_the_run_columns_gets_them_first():
    old = [row for row in EVENT_INFO if row[0] not in LOAD_FILLED]
    redshift = Redshift(copies=[(1, 0)], columns=old)
    redshift_copy.stage(redshift.cursor, FakeS3Client({BUCKET: {}}), settings(), [DAY1])
    statements = redshift.cursor.statements
    # under the table's lock, the columns read again, then each missing one added once
    assert statements[:7] == [
        read_sql("table_columns"),
        f"LOCK {EVENTS}",
        read_sql("table_columns"),
        f'ALTER TABLE {EVENTS} ADD COLUMN "source_key" VARCHAR(1024)',
        f'ALTER TABLE {EVENTS} ADD COLUMN "run_id" VARCHAR(256)',
        f'ALTER TABLE {EVENTS} ADD COLUMN "staged_at" TIMESTAMP',
        read_sql("table_columns"),
    ]
    assert statements[8].startswith(f"COPY {EVENTS} (")
    # the upgraded table is run-partitioned at once: its rows are named after the run
    assert [s for s in statements if s.startswith("UPDATE")] == [
        f"UPDATE {EVENTS} SET source_key = %(source_key)s, run_id = %(run_id)s, "
        "staged_at = %(staged_at)s WHERE source_key IS NULL"
    ]


def test_without_a_counts_table_nothing_is_counted():
    redshift = Redshift(copies=[(1, 4)])
    redshift_copy.stage(
        redshift.cursor, FakeS3Client({BUCKET: {}}), settings(counts_table=None), [DAY1]
    )
    assert not [s for s in redshift.cursor.statements if "staging_counts" in s]


# ----------------------------------------------------------------------------- rejects


def stl_row(key: str, line: int, column: str, code: int, reason: str, raw: str) -> tuple:
    """A row of redshift_load_errors_stl.sql (trailing blanks of CHAR columns trimmed)."""
    return (f"s3://{BUCKET}/{key}", line, column, code, reason, raw)


def test_rows_copy_skipped_and_rows_breaking_a_rule_are_set_aside(caplog):
    long_line = json.dumps(play_event(gender="Female, 42"))
    redshift = Redshift(
        copies=[(201, 10), (202, 6)],
        load_errors={
            201: [
                stl_row(DAY1, 4, "gender", 1204, "String length exceeds DDL length", long_line),
                stl_row(DAY1, 9, "ts", 1213, "Missing data for not-null field", '{"page": "x"}'),
            ],
            202: [
                stl_row(
                    DAY2, 2, "", 1224, "Invalid JSONPath format: Member is not an object.", "[1, 2]"
                )
            ],
        },
        broken=[
            # rule number (rule_list order), then the row's values in COPY's column order
            [(1, *[None if n == "sessionid" else "v" for n in EVENT_NAMES])],
            [(3, *["abc" if n == "userid" else 1 for n in EVENT_NAMES])],
        ],
    )
    with caplog.at_level(logging.INFO):
        load = redshift_copy.stage(
            redshift.cursor, FakeS3Client({BUCKET: {}}), settings(), [DAY1, DAY2]
        )

    assert load.rows == 10 - 1 + 6 - 1
    assert load.copies == 2
    raw_session = json.dumps({n: None if n == "sessionid" else "v" for n in EVENT_NAMES})
    raw_user = json.dumps({n: "abc" if n == "userid" else 1 for n in EVENT_NAMES})
    assert load.rejects == [
        Reject(DAY1, None, "sessionid is missing or null" + NEEDED, raw_session),
        Reject(DAY1, 4, "String length exceeds DDL length (column gender, Redshift load error "
               "1204)", long_line),
        Reject(DAY1, 9, "Missing data for not-null field (column ts, Redshift load error 1213)",
               '{"page": "x"}'),
        Reject(DAY2, None, NUMBER, raw_user),
        Reject(DAY2, 2, "Invalid JSONPath format: Member is not an object. (Redshift load error "
               "1224)", "[1, 2]"),
    ]  # fmt: skip
    deletes = [s for s in redshift.cursor.statements if s.startswith(f"DELETE FROM {EVENTS}")]
    assert len(deletes) == 2  # each key's rule breakers leave the staging table
    assert deletes[0].startswith(f"DELETE FROM {EVENTS} WHERE source_key IS NULL AND ((")


def test_on_serverless_the_sys_view_is_read_and_has_no_raw_line():
    redshift = Redshift(
        copies=[(9001, 1)],
        load_errors={9001: [(f"s3://{BUCKET}/{DAY1}", 3, "sessionid", 1207,
                             "Invalid digit, Value 'x', Pos 0, Type: Integer", None)]},
    )  # fmt: skip
    load = redshift_copy.stage(
        redshift.cursor, FakeS3Client({BUCKET: {}}), settings(errors_view="sys"), [DAY1]
    )
    assert redshift.cursor.executed[4] == (
        read_sql("redshift_load_errors_sys"),
        {"query_id": 9001, "limit": 6},
    )
    assert "FROM sys_load_error_detail" in read_sql("redshift_load_errors_sys")
    assert load.rejects == [
        Reject(DAY1, 3, "Invalid digit, Value 'x', Pos 0, Type: Integer (column sessionid, "
               "Redshift load error 1207)", None)
    ]  # fmt: skip


def test_more_rejects_than_tolerated_over_the_whole_load_fail_naming_the_first():
    redshift = Redshift(
        copies=[(1, 5), (2, 5)],
        load_errors={1: [stl_row(DAY1, 2, "ts", 1207, "Invalid digit", "{}")]},
        broken=[[], [(3, *["x"] * len(EVENT_NAMES)), (3, *["y"] * len(EVENT_NAMES))]],
    )
    with pytest.raises(TooManyRejectsError) as info:
        redshift_copy.stage(
            redshift.cursor, FakeS3Client({BUCKET: {}}), settings(max_rejects=2), [DAY1, DAY2]
        )
    assert str(info.value) == (
        "more than 2 bad record(s) (max_rejects); first: "
        f"{DAY1} line 2: Invalid digit (column ts, Redshift load error 1207); "
        f"{DAY2}: {NUMBER}; {DAY2}: {NUMBER}"
    )


def test_a_manifest_that_cannot_be_written_says_what_to_grant():
    denied = ClientError(
        {"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "PutObject"
    )
    redshift = Redshift(copies=[])
    with pytest.raises(ManifestError) as info:
        redshift_copy.stage(
            redshift.cursor, FakeS3Client({BUCKET: {}}, put_error=denied), settings(), [DAY1]
        )
    assert str(info.value).startswith(
        f"cannot write the COPY manifest s3://{BUCKET}/{RUN_FOLDER}/staging_events/{DAY1}.manifest"
    )
    assert str(info.value).endswith(f"needs s3:PutObject on s3://{BUCKET}/_sparkify/manifests/*")
    assert not [s for s in redshift.cursor.statements if s.startswith("COPY")]


# ----------------------------------------------------------------------------- on PostgreSQL


class CopyingCursor:
    """A real PostgreSQL cursor standing in for Redshift: a COPY of a manifest inserts the
    listed objects' records as Redshift's JSON 'auto ignorecase' would (keys lower-cased,
    other columns NULL), ``pg_last_copy_*`` answer for it and the load-error view is
    empty; every other statement runs for real."""

    def __init__(self, cursor: Any, client: FakeS3Client, columns: list[str]) -> None:
        self.cursor = cursor
        self.client = client
        self.columns = columns
        self.copy_id = 0
        self.copied = 0
        self._result: list[tuple] | None = None

    def execute(self, statement: str, params: Any = None) -> None:
        self._result = None
        if statement.startswith("COPY "):
            table = statement.split()[1]
            url = statement.split("\n")[1].removeprefix("FROM 's3://").rstrip("'")
            entries = json.loads(self.client.buckets[BUCKET][url.split("/", 1)[1]])["entries"]
            rows = []
            for entry in entries:
                key = entry["url"].split("/", 3)[3]
                for line in self.client.buckets[BUCKET][key].decode().splitlines():
                    record = {k.lower(): v for k, v in json.loads(line).items()}
                    rows.append(tuple(record.get(c) for c in self.columns))
            marks = ", ".join(["%s"] * len(self.columns))
            names = ", ".join(self.columns)
            self.cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)
            self.copy_id += 1
            self.copied = len(rows)
        elif statement.startswith("SELECT pg_last_copy_id()"):
            self._result = [(self.copy_id, self.copied)]
        elif "stl_load_errors" in statement:
            self._result = []
        else:
            self.cursor.execute(statement, params)

    def fetchone(self) -> tuple:
        return self._result.pop(0) if self._result is not None else self.cursor.fetchone()

    def fetchall(self) -> list[tuple]:
        return self._result if self._result is not None else self.cursor.fetchall()

    def __iter__(self):
        return iter(self.fetchall())


# Records of every rule's case that Redshift's COPY itself loads (a NUL or a wrong type
# never reaches the rule pass there: COPY skips such a line into its load-error view).
EVENT_CASES = [
    play_event(itemInSession=1),
    play_event(sessionId=None, itemInSession=2),
    without(play_event(itemInSession=3), "itemInSession"),
    play_event(userId="abc", itemInSession=4),
    play_event(userId="", itemInSession=5),
    logged_out_event(itemInSession=6),
    logged_out_event(sessionId=None, itemInSession=7),
    without(play_event(itemInSession=8), "userId"),
    play_event(userId="2147483648", itemInSession=9),
    play_event(userId="2147483647", itemInSession=10),
    play_event(userId="0000000000042", itemInSession=11),
    play_event(userId="٤٢", itemInSession=12),
    play_event(userId="00000000002147483648", itemInSession=13),
    play_event(userId="-1", itemInSession=14),
    play_event(ts=1541030400000 + 3_600_000, itemInSession=15),  # the next hour
    play_event(itemInSession=1),  # line 1 again: one play
]
SONG_CASES = [
    song_record(),
    without(song_record(), "song_id"),
    song_record(artist_id=None),
    without(song_record(), "title"),
    song_record(title=""),
]


def loader_verdicts(records: list[dict], table: str, info: list[tuple]) -> list[str | None]:
    """Per record, the PostgreSQL loader's reason for refusing it (None: staged)."""
    from sparkify.json_encode import Column

    encoder = RowEncoder([Column(*c) for c in info], RULES[table])
    verdicts = []
    for record in records:
        rejects = RejectCollector(1)
        list(encode_object("k", [json.dumps(record).encode()], encoder, rejects))
        verdicts.append(rejects.rejects[0].reason if rejects.rejects else None)
    return verdicts


@pytest.fixture
def database():
    from tests.stack_support import connect, fresh_database

    name = fresh_database("sparkify_test_redshift_sql")
    with connect(name) as conn:
        yield conn


@pytest.mark.stack
def test_on_postgresql_the_rule_pass_refuses_what_the_loader_refuses(database):
    client = FakeS3Client({BUCKET: {}})
    client.buckets[BUCKET][DAY1] = "\n".join(json.dumps(r) for r in EVENT_CASES).encode()
    with database.cursor() as real:
        cursor = CopyingCursor(real, client, EVENT_NAMES)
        load = redshift_copy.stage(cursor, client, settings(max_rejects=20), [DAY1])
        real.execute("SELECT iteminsession, userid, source_key FROM staging_events ORDER BY 1")
        staged = real.fetchall()
        real.execute(
            "SELECT table_name, source_key, hour_start, plays, run_id FROM staging_counts "
            "ORDER BY hour_start"
        )
        counts = real.fetchall()

    verdicts = loader_verdicts(EVENT_CASES, "staging_events", EVENT_INFO)
    refused = sorted(
        (r.get("itemInSession", -1), v) for r, v in zip(EVENT_CASES, verdicts, strict=True) if v
    )
    by_rule = sorted(
        (json.loads(r.raw_line)["iteminsession"] or -1, r.reason) for r in load.rejects
    )
    assert by_rule == refused  # same records, same reasons
    assert by_rule == [
        (-1, "iteminsession is missing or null" + NEEDED),
        (2, "sessionid is missing or null" + NEEDED),
        (4, NUMBER), (5, NUMBER), (8, "userid is missing or null" + NEEDED), (9, NUMBER),
        (12, NUMBER), (13, NUMBER), (14, NUMBER),
    ]  # fmt: skip
    assert {(r.source_key, r.line_number) for r in load.rejects} == {(DAY1, None)}
    assert staged == [
        (1, "42", DAY1), (1, "42", DAY1), (6, "", DAY1), (7, "", DAY1),
        (10, "2147483647", DAY1), (11, "0000000000042", DAY1), (15, "42", DAY1),
    ]  # fmt: skip
    assert load.rows == len(staged)
    assert counts == [
        ("staging_events", DAY1, datetime(2018, 11, 1, 0), 3, RUN_ID),  # items 1, 10, 11
        ("staging_events", DAY1, datetime(2018, 11, 1, 1), 1, RUN_ID),  # item 15
    ]


@pytest.mark.stack
def test_on_postgresql_another_runs_rows_and_counts_of_the_same_object_stay(database):
    """Hourly runs stage one day file at once: this run's rows are named after it, its
    counts count only them and replace only its own, another run's stay as they were."""
    other = "scheduled__2018-11-01T01:00:00+00:00"
    client = FakeS3Client({BUCKET: {}})
    records = [play_event(itemInSession=1), play_event(itemInSession=2)]
    client.buckets[BUCKET][DAY1] = "\n".join(json.dumps(r) for r in records).encode()
    with database.cursor() as real:
        real.execute(
            "INSERT INTO staging_events (page, ts, userid, sessionid, iteminsession, source_key, "
            "run_id, staged_at) VALUES ('NextSong', 1541030400000, '99', 1, 0, %s, %s, now())",
            (DAY1, other),
        )
        real.execute(
            "INSERT INTO staging_counts VALUES "
            "('staging_events', %s, '2018-11-01 00:00', 5, %s, now()), "
            "('staging_events', 'log_data/old.json', '2018-11-01 00:00', 9, %s, now())",
            (DAY1, other, RUN_ID),
        )
        cursor = CopyingCursor(real, client, EVENT_NAMES)
        load = redshift_copy.stage(cursor, client, settings(), [DAY1])
        real.execute(
            "SELECT iteminsession, source_key, run_id, staged_at IS NOT NULL FROM staging_events "
            "ORDER BY run_id, iteminsession"
        )
        staged = real.fetchall()
        real.execute(
            "SELECT source_key, hour_start, plays, run_id FROM staging_counts ORDER BY run_id"
        )
        counts = real.fetchall()

    assert load.rows == 2
    assert staged == [(1, DAY1, RUN_ID, True), (2, DAY1, RUN_ID, True), (0, DAY1, other, True)]
    assert counts == [
        (DAY1, datetime(2018, 11, 1, 0), 2, RUN_ID),  # not 3: the other run's play is not ours
        (DAY1, datetime(2018, 11, 1, 0), 5, other),
    ]


@pytest.mark.stack
def test_on_postgresql_the_song_rule_pass_refuses_what_the_loader_refuses(database):
    keys = [f"song_data/A/A/A/TR{n}.json" for n in range(len(SONG_CASES))]
    client = FakeS3Client({BUCKET: {}})
    for key, record in zip(keys, SONG_CASES, strict=True):
        client.buckets[BUCKET][key] = json.dumps(record).encode()
    with database.cursor() as real:
        cursor = CopyingCursor(real, client, SONG_NAMES)
        load = redshift_copy.stage(cursor, client, settings("staging_songs"), keys)
        real.execute("SELECT song_id, title, source_key FROM staging_songs ORDER BY title")
        staged = real.fetchall()

    manifest = f"{RUN_FOLDER}/staging_songs.manifest"
    verdicts = loader_verdicts(SONG_CASES, "staging_songs", SONG_INFO)
    assert sorted(r.reason for r in load.rejects) == sorted(v for v in verdicts if v)
    assert [(r.source_key, r.line_number, r.reason) for r in load.rejects] == [
        (manifest, None, "artist_id is missing or null"),
        (manifest, None, "song_id is missing or null"),
        (manifest, None, "title is missing or null"),
    ]  # by object, line, then reason
    assert json.loads(load.rejects[0].raw_line) == {
        **{k: None for k in SONG_NAMES}, **{k: v for k, v in song_record().items()},
        "artist_id": None,
    }  # fmt: skip
    assert staged == [
        ("SOUPIRU12A6D4FA1E1", "", None),
        ("SOUPIRU12A6D4FA1E1", "Der Kleine Dompfaff", None),
    ]
