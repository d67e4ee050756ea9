"""Unit tests for sparkify.s3_objects: URLs, interval days, listings, line streams."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pendulum
import pytest

from sparkify.config import LOG_KEY_TEMPLATE
from sparkify.s3_objects import (
    MissingObjectsError,
    days_in_interval,
    existing_keys,
    interval_keys,
    line_blocks,
    list_keys,
    parse_s3_url,
)
from tests.fakes import FakeS3Client

# ----------------------------------------------------------------------------- URLs


@pytest.mark.parametrize(
    ("url", "parts"),
    [
        ("s3://udacity-dend/log_data/", ("udacity-dend", "log_data/")),
        ("s3://sparkify-local/song_data/A/B/x.json", ("sparkify-local", "song_data/A/B/x.json")),
        ("s3://my.bucket.name/", ("my.bucket.name", "")),
        ("s3://abc/key with spaces/é.json", ("abc", "key with spaces/é.json")),
    ],
)
def test_parse_s3_url_valid(url, parts):
    assert parse_s3_url(url) == parts


@pytest.mark.parametrize(
    "url",
    [
        "s3://bucket",  # no slash after the bucket
        "https://bucket/key",
        "bucket/key",
        "s3://Bucket/key",  # upper case bucket
        "s3://ab/key",  # too short
        "s3://-bucket/key",
        "s3://bucket/it's.json",
        "s3://bucket/a\\b",
        "s3://bucket/x' CREDENTIALS 'y",
        "",
    ],
)
def test_parse_s3_url_invalid(url):
    with pytest.raises(ValueError, match="is not an s3://bucket/key URL"):
        parse_s3_url(url)


def test_missing_objects_error_is_a_file_not_found_error():
    assert issubclass(MissingObjectsError, FileNotFoundError)


# ----------------------------------------------------------------------------- interval days


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_daily_interval_is_one_day():
    assert days_in_interval(utc(2018, 11, 5), utc(2018, 11, 6)) == [date(2018, 11, 5)]
    assert interval_keys(LOG_KEY_TEMPLATE, utc(2018, 11, 5), utc(2018, 11, 6)) == [
        "log_data/2018/11/2018-11-05-events.json"
    ]


def test_hourly_interval_is_that_days_key():
    start = pendulum.datetime(2018, 11, 5, 13, tz="UTC")
    assert interval_keys(LOG_KEY_TEMPLATE, start, start.add(hours=1)) == [
        "log_data/2018/11/2018-11-05-events.json"
    ]


def test_last_hour_of_the_day_does_not_touch_the_next_day():
    assert days_in_interval(utc(2018, 11, 5, 23), utc(2018, 11, 6)) == [date(2018, 11, 5)]


def test_interval_spanning_month_end():
    assert interval_keys(LOG_KEY_TEMPLATE, utc(2018, 11, 30, 12), utc(2018, 12, 1, 12)) == [
        "log_data/2018/11/2018-11-30-events.json",
        "log_data/2018/12/2018-12-01-events.json",
    ]


def test_interval_spanning_year_end_and_several_days():
    assert days_in_interval(utc(2018, 12, 30), utc(2019, 1, 2)) == [
        date(2018, 12, 30),
        date(2018, 12, 31),
        date(2019, 1, 1),
    ]


def test_non_utc_pendulum_daily_interval_touches_two_utc_days():
    # A New York day (EST, UTC-5 in November) runs 05:00Z to 05:00Z the next day.
    start = pendulum.datetime(2018, 11, 5, tz="America/New_York")
    assert interval_keys(LOG_KEY_TEMPLATE, start, start.add(days=1)) == [
        "log_data/2018/11/2018-11-05-events.json",
        "log_data/2018/11/2018-11-06-events.json",
    ]


def test_non_utc_hour_maps_to_the_previous_utc_day():
    # 08:00-09:00 in Tokyo (UTC+9) on Nov 6 is 23:00-24:00Z on Nov 5.
    start = pendulum.datetime(2018, 11, 6, 8, tz="Asia/Tokyo")
    assert days_in_interval(start, start.add(hours=1)) == [date(2018, 11, 5)]


def test_fixed_offset_stdlib_datetimes():
    minus_five = timezone(timedelta(hours=-5))
    start = datetime(2018, 11, 5, 20, tzinfo=minus_five)  # 01:00Z on Nov 6
    assert days_in_interval(start, start + timedelta(hours=2)) == [date(2018, 11, 6)]


def test_empty_interval_has_no_days():
    assert days_in_interval(utc(2018, 11, 5), utc(2018, 11, 5)) == []


# ----------------------------------------------------------------------------- listings

BUCKET = "sparkify-test"


def fake_client(page_size: int = 2) -> FakeS3Client:
    objects = {
        "log_data/2018/11/2018-11-01-events.json": b"{}\n",
        "log_data/2018/11/2018-11-02-events.json": b"{}\n",
        "log_data/2018/11/2018-11-03-events.json": b"{}\n",
        "log_data/2018/11/README.txt": b"not json",
        "log_data/2018/12/2018-12-01-events.json": b"{}\n",
        "song_data/A/A/A/TRAAAAA.json": b"{}",
        "song_data/A/B/C/TRABCAA.json": b"{}",
        "log_data_old/2018/11/2018-11-01-events.json": b"{}",
    }
    return FakeS3Client({BUCKET: objects}, page_size=page_size)


def test_list_keys_reads_every_page_and_filters_by_suffix():
    client = fake_client(page_size=2)
    assert list_keys(client, BUCKET, "log_data/") == [
        "log_data/2018/11/2018-11-01-events.json",
        "log_data/2018/11/2018-11-02-events.json",
        "log_data/2018/11/2018-11-03-events.json",
        "log_data/2018/12/2018-12-01-events.json",
    ]
    assert client.list_calls == [(BUCKET, "log_data/")]


def test_list_keys_without_suffix_and_empty_prefix():
    client = fake_client(page_size=1)
    assert list_keys(client, BUCKET, "log_data/2018/11/", suffix="") == [
        "log_data/2018/11/2018-11-01-events.json",
        "log_data/2018/11/2018-11-02-events.json",
        "log_data/2018/11/2018-11-03-events.json",
        "log_data/2018/11/README.txt",
    ]
    assert list_keys(client, BUCKET, "nothing/here/") == []


def test_existing_keys_splits_present_and_missing_listing_each_folder_once():
    client = fake_client()
    wanted = [
        "log_data/2018/11/2018-11-03-events.json",
        "log_data/2018/11/2018-11-04-events.json",
        "log_data/2018/11/2018-11-01-events.json",
        "log_data/2018/12/2018-12-02-events.json",
        "log_data/2018/12/2018-12-01-events.json",
    ]
    present, missing = existing_keys(client, BUCKET, wanted)
    assert present == [
        "log_data/2018/11/2018-11-03-events.json",
        "log_data/2018/11/2018-11-01-events.json",
        "log_data/2018/12/2018-12-01-events.json",
    ]
    assert missing == [
        "log_data/2018/11/2018-11-04-events.json",
        "log_data/2018/12/2018-12-02-events.json",
    ]
    assert sorted(client.list_calls) == [
        (BUCKET, "log_data/2018/11/"),
        (BUCKET, "log_data/2018/12/"),
    ]


def test_existing_keys_folder_prefix_does_not_match_longer_names():
    # "log_data/2018/11/2018-11-01-events.json" exists; its prefix alone does not.
    client = fake_client()
    present, missing = existing_keys(client, BUCKET, ["log_data/2018/11/2018-11-01-events"])
    assert (present, missing) == ([], ["log_data/2018/11/2018-11-01-events"])


def test_list_and_existing_keys_against_moto(monkeypatch):
    boto3 = pytest.importorskip("boto3")
    moto = pytest.importorskip("moto")
    for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    with moto.mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        for key in (
            "log_data/2018/11/2018-11-01-events.json",
            "log_data/2018/11/2018-11-02-events.json",
            "log_data/2018/11/notes.txt",
            "song_data/A/B/TRAB.json",
        ):
            client.put_object(Bucket=BUCKET, Key=key, Body=b'{"a": 1}\n{"a": 2}\n')
        assert list_keys(client, BUCKET, "log_data/") == [
            "log_data/2018/11/2018-11-01-events.json",
            "log_data/2018/11/2018-11-02-events.json",
        ]
        assert list_keys(client, BUCKET, "missing/") == []
        assert existing_keys(
            client,
            BUCKET,
            ["log_data/2018/11/2018-11-02-events.json", "log_data/2018/11/2018-11-03-events.json"],
        ) == (
            ["log_data/2018/11/2018-11-02-events.json"],
            ["log_data/2018/11/2018-11-03-events.json"],
        )
        read = line_blocks(client, BUCKET)
        assert list(read("song_data/A/B/TRAB.json")) == [b'{"a": 1}\n{"a": 2}']


# ----------------------------------------------------------------------------- line streams


def lines_of(blocks) -> list[bytes]:
    return [line for block in blocks for line in block.split(b"\n")]


def test_line_blocks_hold_whole_lines_across_piece_boundaries_and_close_the_body():
    data = b'{"n": 1}\n{"n": 22}\n\n{"text": "caf\xc3\xa9"}\n{"n": 4}'
    lines = [b'{"n": 1}', b'{"n": 22}', b"", b'{"text": "caf\xc3\xa9"}', b'{"n": 4}']
    for chunk_size in (1, 3, 10, 1 << 17):
        client = FakeS3Client({BUCKET: {"k.json": data}})
        blocks = list(line_blocks(client, BUCKET, chunk_size=chunk_size)("k.json"))
        assert lines_of(blocks) == lines, chunk_size
        assert client.get_calls == ["k.json"]
        assert client.bodies[0].was_closed
    # a piece holding several line ends gives one block, not one per line
    whole = line_blocks(FakeS3Client({BUCKET: {"k.json": data}}), BUCKET, chunk_size=1 << 17)
    assert list(whole("k.json")) == [data.rsplit(b"\n", 1)[0], b'{"n": 4}']


def test_line_blocks_of_an_object_ending_in_a_newline_add_no_blank_line():
    client = FakeS3Client({BUCKET: {"k.json": b'{"a": 1}\n{"a": 2}\n'}})
    blocks = line_blocks(client, BUCKET, chunk_size=4)("k.json")
    assert lines_of(blocks) == [b'{"a": 1}', b'{"a": 2}']


def test_line_blocks_close_the_body_when_the_consumer_stops_early():
    client = FakeS3Client({BUCKET: {"k.json": b"1\n2\n3\n"}})
    blocks = line_blocks(client, BUCKET, chunk_size=2)("k.json")
    assert next(blocks) == b"1"
    blocks.close()
    assert client.bodies[0].was_closed


def test_naive_datetimes_are_utc():
    naive = interval_keys(
        "log_data/%Y/%m/%Y-%m-%d-events.json", datetime(2018, 11, 5, 23), datetime(2018, 11, 6)
    )
    assert naive == ["log_data/2018/11/2018-11-05-events.json"]
