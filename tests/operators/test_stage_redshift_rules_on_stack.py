"""StageToRedshiftOperator's PostgreSQL path on the real S3 API and PostgreSQL: records the
star schema cannot use are caught where they enter (staging_rejects, with object, line
and reason) while the rest of the interval loads, and the plays are counted per object
and UTC hour (staging_counts), each run's counts and staged rows its own."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from airflow.exceptions import AirflowException
from astro.files import File
from astro.table import Metadata, Table

from operators.stage_redshift import StageToRedshiftOperator
from tests.fakes import apply_environment, logged_out_event, play_event, song_record, without
from tests.stack_support import (
    connection_environment,
    fresh_bucket,
    fresh_database,
    table_rows,
)

pytestmark = pytest.mark.stack

DB, BUCKET = "sparkify_test_stage_rules", "sparkify-test-stage-rules"
DAY1 = datetime(2018, 11, 1, tzinfo=UTC)
NOV1 = 1541030400000  # 2018-11-01T00:00:00Z in epoch ms
HOUR = 3_600_000
DAY_KEY = "log_data/2018/11/2018-11-01-events.json"
KEY_TEMPLATE = "log_data/%Y/%m/%Y-%m-%d-events.json"
NEEDED = " (needed when page = 'NextSong')"
NUMBER = "userid is not a whole number up to 2147483647" + NEEDED
EVENT_COLUMNS = [
    "artist", "auth", "firstName", "gender", "itemInSession", "lastName", "length", "level",
    "location", "method", "page", "registration", "sessionId", "song", "status", "ts",
    "userAgent", "userId",
]  # fmt: skip
SONG_COLUMNS = [
    "num_songs", "artist_id", "artist_latitude", "artist_longitude", "artist_location",
    "artist_name", "song_id", "title", "duration", "year",
]  # fmt: skip


@pytest.fixture
def stack(monkeypatch):
    client = fresh_bucket(BUCKET)
    fresh_database(DB)
    apply_environment(monkeypatch, connection_environment(DB, BUCKET))
    return client


def put_lines(client, key: str, records: list[dict]) -> list[str]:
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    client.put_object(Bucket=BUCKET, Key=key, Body="\n".join(lines).encode())
    return lines


def stage(table: str, prefix: str, run_id: str = "manual__rules", **kwargs) -> None:
    operator = StageToRedshiftOperator(
        task_id=f"stage_{table}",
        input_file=File(f"s3://{BUCKET}/{prefix}", conn_id="aws-redshift"),
        output_table=Table(name=table, conn_id="redshift", metadata=Metadata(schema="public")),
        **{"max_rejects": 20, **kwargs},
    )
    end = DAY1 + timedelta(days=1)
    operator.execute({"data_interval_start": DAY1, "data_interval_end": end, "run_id": run_id})


def staged_event(record: dict, key: str, run_id: str = "manual__rules") -> tuple:
    """The staging_events row a record becomes (its keys in lower case, then the object
    and the run that staged it), without its staged_at."""
    return (*(record.get(c) for c in EVENT_COLUMNS), key, run_id)


def staged_events() -> list[tuple]:
    """staging_events by ts and item, without staged_at (which every row has)."""
    rows = table_rows(DB, "staging_events", ["ts", "iteminsession"])
    assert all(isinstance(row[-1], datetime) for row in rows)
    return [row[:-1] for row in rows]


def rejects() -> list[tuple]:
    """staging_rejects without its rejected_at."""
    return [row[:6] for row in table_rows(DB, "staging_rejects", ["source_key", "line_number"])]


def test_unusable_plays_are_set_aside_and_the_interval_loads(stack):
    records = [
        play_event(itemInSession=1),  # 1
        play_event(sessionId=None, itemInSession=2),  # 2 null sessionId
        without(play_event(ts=NOV1 + 3), "itemInSession"),  # 3 missing itemInSession
        play_event(userId="abc", itemInSession=4),  # 4 non-numeric userId
        play_event(userId="", itemInSession=5),  # 5 a play without a user
        logged_out_event(ts=NOV1 + 6, itemInSession=6),  # 6 logged out Home: kept as it is
        play_event(song="Ha\u0000lo", itemInSession=7),  # 7 a NUL: PostgreSQL refuses it
        play_event(lastName="Ó" + "東京" * 50, itemInSession=8),  # 8 101 characters, 302 bytes
        play_event(userId="2147483648", itemInSession=9),  # 9 beyond users.user_id's INTEGER
        play_event(itemInSession=10, ts=NOV1 + HOUR),  # 10
    ]
    lines = put_lines(stack, DAY_KEY, records)
    stage("staging_events", "log_data/", key_template=KEY_TEMPLATE)

    staged = staged_events()
    assert staged == [
        staged_event(records[n], DAY_KEY) for n in (0, 5, 9)
    ]  # sorted by ts: NOV1, NOV1 + 6, NOV1 + HOUR
    run = ("manual__rules", "staging_events", DAY_KEY)
    assert rejects() == [
        (*run, 2, "sessionid is missing or null" + NEEDED, lines[1]),
        (*run, 3, "iteminsession is missing or null" + NEEDED, lines[2]),
        (*run, 4, NUMBER, lines[3]),
        (*run, 5, NUMBER, lines[4]),
        (*run, 7, "song holds a NUL character (\\u0000), which the warehouse cannot store",
         lines[6]),
        (*run, 8, "lastname is 302 bytes of UTF-8, longer than the column's 256", lines[7]),
        (*run, 9, NUMBER, lines[8]),
    ]  # fmt: skip


def test_unusable_songs_are_set_aside_and_the_others_load(stack):
    files = {
        "song_data/A/A/A/TRAAA1.json": song_record(),
        "song_data/A/A/A/TRAAA2.json": without(song_record(song_id="SO2"), "song_id"),
        "song_data/A/A/A/TRAAA3.json": song_record(song_id="SO3", artist_id=None),
        "song_data/A/A/A/TRAAA4.json": without(song_record(song_id="SO4"), "title"),
        "song_data/A/A/A/TRAAA5.json": song_record(song_id="SO5", title="Der\u0000Dompfaff"),
        "song_data/A/A/A/TRAAA6.json": song_record(
            song_id="SO6", artist_name="Sigur Rós", title="Hoppípolla"
        ),
    }
    lines = {key: put_lines(stack, key, [record])[0] for key, record in files.items()}
    stage("staging_songs", "song_data/")

    assert table_rows(DB, "staging_songs", ["song_id"]) == [
        (*(files[k].get(c) for c in SONG_COLUMNS), k)
        for k in ("song_data/A/A/A/TRAAA6.json", "song_data/A/A/A/TRAAA1.json")
    ]  # SO6 < SOUPIRU...
    run = ("manual__rules", "staging_songs")
    assert rejects() == [
        (*run, key, 1, reason, lines[key])
        for key, reason in [
            ("song_data/A/A/A/TRAAA2.json", "song_id is missing or null"),
            ("song_data/A/A/A/TRAAA3.json", "artist_id is missing or null"),
            ("song_data/A/A/A/TRAAA4.json", "title is missing or null"),
            (
                "song_data/A/A/A/TRAAA5.json",
                "title holds a NUL character (\\u0000), which the warehouse cannot store",
            ),
        ]
    ]


def counts() -> list[tuple]:
    """staging_counts without its counted_at."""
    rows = table_rows(DB, "staging_counts", ["source_key", "hour_start"])
    return [row[:5] for row in rows]


def test_plays_are_counted_per_object_and_utc_hour_and_replaced_per_run(stack):
    day1 = [
        play_event(ts=NOV1 + 1000, itemInSession=0),
        play_event(ts=NOV1 + 2000, itemInSession=1),
        play_event(ts=NOV1 + 2000, itemInSession=1),  # delivered twice: one play
        play_event(ts=NOV1 + 3000, itemInSession=2, userId="abc"),  # set aside: not counted
        logged_out_event(ts=NOV1 + 4000),  # not a play
        play_event(ts=NOV1 + HOUR, itemInSession=3),  # the next hour's first millisecond
        play_event(ts=NOV1 + 2 * HOUR - 1, itemInSession=4, sessionId=8),  # its last
    ]
    day2_key = "log_data/2018/11/2018-11-02-events.json"
    day2 = [play_event(ts=NOV1 + 25 * HOUR, itemInSession=0, userId="7")]
    put_lines(stack, DAY_KEY, day1)
    put_lines(stack, day2_key, day2)
    stage("staging_events", "log_data/", run_id="run_1")  # the whole prefix: both days

    hour = datetime(2018, 11, 1)
    assert counts() == [
        ("staging_events", DAY_KEY, hour, 2, "run_1"),
        ("staging_events", DAY_KEY, hour + timedelta(hours=1), 2, "run_1"),
        ("staging_events", day2_key, hour + timedelta(hours=25), 1, "run_1"),
    ]

    # Another run (an hourly run of the same day) stages the day as it is now: it counts
    # its own rows, and run_1's counts stay run_1's (its checks read them).
    put_lines(stack, DAY_KEY, day1[:1])
    stage("staging_events", "log_data/", run_id="run_2", key_template=KEY_TEMPLATE)
    run_1 = [
        ("staging_events", DAY_KEY, hour, 2, "run_1"),
        ("staging_events", DAY_KEY, hour + timedelta(hours=1), 2, "run_1"),
        ("staging_events", day2_key, hour + timedelta(hours=25), 1, "run_1"),
    ]
    assert sorted(counts(), key=lambda c: c[4]) == [
        *run_1, ("staging_events", DAY_KEY, hour, 1, "run_2"),
    ]  # fmt: skip

    # run_1 retried with the corrected day alone: its counts are replaced by the retry's
    # (its day-2 rows are gone with them), run_2's stay
    stage("staging_events", "log_data/", run_id="run_1", key_template=KEY_TEMPLATE)
    assert sorted(counts(), key=lambda c: c[4]) == [
        ("staging_events", DAY_KEY, hour, 1, "run_1"),
        ("staging_events", DAY_KEY, hour, 1, "run_2"),
    ]
    assert sorted((row[-2], row[-1]) for row in staged_events()) == [
        (DAY_KEY, "run_1"), (DAY_KEY, "run_2"),
    ]  # fmt: skip


def test_a_failed_load_changes_no_count(stack):
    put_lines(stack, DAY_KEY, [play_event()])
    stage("staging_events", "log_data/", run_id="run_1", key_template=KEY_TEMPLATE)
    before = counts()
    assert before == [("staging_events", DAY_KEY, datetime(2018, 11, 1), 1, "run_1")]

    put_lines(stack, DAY_KEY, [play_event(userId="abc", itemInSession=n) for n in range(3)])
    with pytest.raises(AirflowException, match=r"more than 2 bad record\(s\) \(max_rejects\)"):
        stage("staging_events", "log_data/", "run_2", key_template=KEY_TEMPLATE, max_rejects=2)
    assert counts() == before
    assert rejects() == []
    assert staged_events() == [staged_event(play_event(), DAY_KEY, "run_1")]
