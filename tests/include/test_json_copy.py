"""Unit tests for sparkify.json_copy: JSON lines -> COPY text, and the streaming COPY.

The streaming tests compare what a fake cursor's ``copy_expert`` read, decoded from COPY's
text format, with a plain ``json.loads`` of every line: nothing trusts the encoder.
"""

from __future__ import annotations

import contextlib
import json
import queue
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from types import SimpleNamespace

import pytest

from sparkify import json_copy
from sparkify.json_copy import (
    CHUNK_BYTES,
    REJECT_LINE_CHARS,
    Column,
    LoadResult,
    RecordError,
    Reject,
    RejectCollector,
    RowEncoder,
    StagingError,
    TooManyRejectsError,
    copy_objects,
    encode_object,
    table_columns,
)
from sparkify.s3_objects import line_reader
from sparkify.sql import read_sql
from tests.fakes import FailingCopyCursor, FakeCursor, FakeS3Client, Result, parse_copy_text

COLUMNS = [
    Column("artist", "character varying", True),
    Column("iteminsession", "integer", True),
    Column("length", "double precision", True),
    Column("page", "text", True),
    Column("ts", "bigint", False),
    Column("userid", "character varying", True),
]
TABLE = '"public"."staging_events"'
COPY_SQL = (
    'COPY "public"."staging_events" ("artist", "iteminsession", "length", "page", "ts", '
    '"userid") FROM STDIN'
)
BUCKET = "sparkify-test"
TIMEOUT = 15


def encode(record: object, columns: list[Column] = COLUMNS, where: str = "k.json line 1") -> str:
    line = record if isinstance(record, str | bytes) else json.dumps(record)
    return RowEncoder(columns).encode(line, where)


# ----------------------------------------------------------------------------- RowEncoder


def test_encodes_one_record_in_column_order():
    record = {
        "ts": 1541376000000, "userId": "39", "page": "NextSong", "length": 215.5,
        "itemInSession": 3, "artist": "Des'ree",
    }  # fmt: skip
    assert encode(record) == "Des'ree\t3\t215.5\tNextSong\t1541376000000\t39\n"


def test_keys_match_columns_case_insensitively_and_extra_keys_are_ignored():
    record = {"TS": 1, "USERID": "7", "ItemInSession": 0, "method": "PUT", "auth": "Logged In"}
    assert encode(record) == "\\N\t0\t\\N\t\\N\t1\t7\n"


def test_null_and_missing_values_are_copy_nulls():
    assert encode({"ts": 5, "artist": None, "length": None}) == "\\N\t\\N\t\\N\t\\N\t5\t\\N\n"


def test_zero_and_empty_string_are_values_not_nulls():
    assert encode({"ts": 0, "userId": "", "length": 0.0}) == "\\N\t\\N\t0.0\t\\N\t0\t\n"


def test_text_escapes_tab_newline_carriage_return_and_backslash():
    line = encode({"ts": 1, "artist": "a\tb\nc\\d\re", "page": "\\N"})
    assert line == "a\\tb\\nc\\\\d\\re\t\\N\t\\N\t\\\\N\t1\t\\N\n"
    # A literal "\N" in the data must not read back as NULL.
    assert parse_copy_text(line.encode(), 6)[0][3] == "\\N"


def test_non_ascii_text_is_preserved():
    record = {"ts": 1, "artist": "Beyoncé · 東京事変 — Sigur Rós"}
    assert encode(record).split("\t")[0] == "Beyoncé · 東京事変 — Sigur Rós"
    raw = json.dumps(record, ensure_ascii=False).encode("utf-8")
    assert encode(raw).split("\t")[0] == "Beyoncé · 東京事変 — Sigur Rós"


def test_text_columns_take_numbers_booleans_and_nested_json():
    assert encode({"ts": 1, "userId": 39})[:-1].split("\t")[5] == "39"
    assert encode({"ts": 1, "page": True})[:-1].split("\t")[3] == "true"
    nested = encode({"ts": 1, "artist": {"name": "Björk", "tags": ["a\tb"]}})
    assert nested.split("\t")[0] == '{"name": "Björk", "tags": ["a\\\\tb"]}'


def test_integral_floats_are_integers_and_ints_are_floats():
    assert encode({"ts": 1541376000000.0, "itemInSession": 3.0, "length": 200}) == (
        "\\N\t3\t200\t\\N\t1541376000000\t\\N\n"
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"ts": "abc"}', "log.json line 7: ts must be an integer, got 'abc'"),
        ('{"ts": "1541376000000"}', "log.json line 7: ts must be an integer, got '1541376000000'"),
        ('{"ts": 1, "itemInSession": 1.5}', "iteminsession must be an integer, got 1.5"),
        # NaN and Infinity are not JSON: the parser refuses them outright.
        ('{"ts": NaN}', "log.json line 7: malformed JSON"),
        ('{"ts": Infinity}', "log.json line 7: malformed JSON"),
        ('{"ts": true}', "log.json line 7: ts must be an integer, got True"),
        ('{"ts": 1, "length": "long"}', "length must be a number, got 'long'"),
        ('{"ts": 1, "length": NaN}', "log.json line 7: malformed JSON"),
        ('{"ts": 1, "length": -Infinity}', "log.json line 7: malformed JSON"),
        ('{"ts": 1, "length": 1e400}', "log.json line 7: malformed JSON"),
        (
            '{"ts": 1, "itemInSession": 2147483648}',
            "iteminsession 2147483648 is out of the integer range",
        ),
        (
            '{"ts": 123456789012345678901234567890}',
            "ts 1.2345678901234568e+29 is out of the bigint range",
        ),
        ('{"ts": 1, "length": false}', "length must be a number, got False"),
        ('{"ts": 1, "length": [1]}', "length must be a number, got [1]"),
    ],
)
def test_bad_numbers_name_file_and_line(line, message):
    with pytest.raises(StagingError) as info:
        encode(line, where="log.json line 7")
    assert message in str(info.value)
    assert str(info.value).startswith("log.json line 7: ")


@pytest.mark.parametrize("line", ['{"page": "Home"}', '{"ts": null, "page": "Home"}'])
def test_required_column_missing_or_null(line):
    with pytest.raises(
        StagingError, match=r"^log.json line 2: required field 'ts' is missing or null$"
    ):
        encode(line, where="log.json line 2")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"ts": 1', r"^k.json line 3: malformed JSON \("),
        (b"\xff\xfe{}", r"^k.json line 3: malformed JSON \("),
        ('{"ts": 1} trailing', r"^k.json line 3: malformed JSON \("),
        ("[1, 2]", r"^k.json line 3: expected a JSON object, got list$"),
        ('"text"', r"^k.json line 3: expected a JSON object, got str$"),
        ("42", r"^k.json line 3: expected a JSON object, got int$"),
        ("null", r"^k.json line 3: expected a JSON object, got NoneType$"),
    ],
)
def test_malformed_json_and_non_objects(line, message):
    with pytest.raises(StagingError, match=message):
        encode(line, where="k.json line 3")


def test_staging_error_is_a_value_error():
    assert issubclass(StagingError, ValueError)
    assert issubclass(RecordError, StagingError)
    assert issubclass(TooManyRejectsError, StagingError)


def test_record_error_keeps_where_and_reason_apart():
    with pytest.raises(RecordError) as info:
        encode('{"ts": "abc"}', where="day.json line 4")
    assert info.value.where == "day.json line 4"
    assert info.value.reason == "ts must be an integer, got 'abc'"
    assert str(info.value) == "day.json line 4: ts must be an integer, got 'abc'"


GENDER = [Column("gender", "character varying", True, 8), Column("ts", "bigint", False)]


def test_text_up_to_the_column_length_is_accepted_counting_bytes_as_redshift_does():
    assert encode({"gender": "x" * 8, "ts": 1}, GENDER) == "xxxxxxxx\t1\n"
    # 4 characters, 8 bytes of UTF-8: fits Redshift's VARCHAR(8), so it is staged here too
    assert encode({"gender": "é" * 4, "ts": 1}, GENDER) == "éééé\t1\n"
    assert encode({"gender": "😀😀", "ts": 1}, GENDER) == "😀😀\t1\n"  # 2 x 4 bytes
    # escaping happens after the length check: 3 characters, 4 in COPY text
    short = [Column("gender", "text", True, 3), *GENDER[1:]]
    assert encode({"gender": "a\tb", "ts": 1}, short) == "a\\tb\t1\n"


def test_text_longer_than_the_column_is_a_RecordError():
    with pytest.raises(RecordError) as info:
        encode({"gender": "x" * 1234, "ts": 1}, GENDER, where="k.json line 9")
    assert info.value.reason == "gender is 1,234 bytes of UTF-8, longer than the column's 8"
    # 5 characters, 10 bytes: PostgreSQL's VARCHAR(8) would take it, Redshift's would not
    with pytest.raises(RecordError) as info:
        encode({"gender": "é" * 5, "ts": 1}, GENDER)
    assert info.value.reason == "gender is 10 bytes of UTF-8, longer than the column's 8"
    # nested JSON is measured as the text stored: '["abcde"]' is 9 bytes
    with pytest.raises(RecordError, match=r"^k.json line 1: gender is 9 bytes of UTF-8"):
        encode({"gender": ["abcde"], "ts": 1}, GENDER)


ARTIST_256 = [Column("artist", "character varying", True, 256), Column("ts", "bigint", False)]


def test_a_300_byte_artist_name_under_256_characters_does_not_fit_varchar_256():
    name = "Björk & " + "東京事変" * 24 + "東"  # 105 characters, 300 bytes
    assert (len(name), len(name.encode())) == (105, 300)
    with pytest.raises(RecordError) as info:
        encode({"artist": name, "ts": 1}, ARTIST_256)
    assert info.value.reason == "artist is 300 bytes of UTF-8, longer than the column's 256"
    fits = "é" * 128  # 256 bytes exactly
    assert encode({"artist": fits, "ts": 1}, ARTIST_256) == fits + "\t1\n"


def test_nul_characters_are_refused_in_any_text_field():
    with pytest.raises(RecordError) as info:
        encode('{"ts": 1, "page": "Next\\u0000Song"}', where="k.json line 4")
    assert str(info.value) == (
        "k.json line 4: page holds a NUL character (\\u0000), which the warehouse cannot store"
    )
    # inside nested JSON the NUL stays escaped text, which any database stores
    nested = encode('{"ts": 1, "artist": {"a": "x\\u0000y"}}')
    assert nested.split("\t")[0] == '{"a": "x\\\\u0000y"}'
    # an escaped backslash before "u0000" is the six characters \u0000, not a NUL
    assert encode('{"ts": 1, "artist": "a\\\\u0000"}').split("\t")[0] == "a\\\\u0000"
    # a NUL in a key no column takes never reaches the database
    assert encode('{"ts": 1, "other": "\\u0000"}') == "\\N\t\\N\t\\N\t\\N\t1\t\\N\n"


def test_encode_object_skips_blank_lines_but_counts_them_in_line_numbers():
    lines = [b'{"ts": 1}', b"", b"   ", b'{"ts": 2}', b'{"ts": "x"}']
    encoder = RowEncoder(COLUMNS)
    produced = encode_object("day.json", lines, encoder)
    assert next(produced) == "\\N\t\\N\t\\N\t\\N\t1\t\\N\n"
    assert next(produced) == "\\N\t\\N\t\\N\t\\N\t2\t\\N\n"
    with pytest.raises(StagingError, match=r"^day.json line 5: ts must be an integer"):
        next(produced)


# ----------------------------------------------------------------------------- table_columns


def test_table_columns_reads_the_information_schema():
    def respond(sql, params):
        assert "information_schema.columns" in sql
        assert params == ("public", "staging_events")
        return Result(
            rows=[("artist", "character varying", True, 1024), ("ts", "bigint", False, None)]
        )

    cursor = FakeCursor(respond)
    assert table_columns(cursor, "public", "staging_events") == [
        Column("artist", "character varying", True, 1024),
        Column("ts", "bigint", False, None),
    ]
    assert "character_maximum_length" in cursor.statements[0]
    assert cursor.statements[0] == read_sql("table_columns")  # the query of include/sql


def test_table_columns_missing_table_and_unsupported_types():
    with pytest.raises(StagingError, match=r"table public.nope does not exist"):
        table_columns(FakeCursor(), "public", "nope")
    cursor = FakeCursor(
        lambda sql, params: Result(rows=[("at", "timestamp without time zone", True, None)])
    )
    with pytest.raises(StagingError, match="unsupported staging column types"):
        table_columns(cursor, "public", "t")


# ----------------------------------------------------------------------------- copy_objects

TYPES: dict[str, Callable[[str], object]] = {
    "artist": str, "iteminsession": int, "length": float, "page": str, "ts": int, "userid": str,
}  # fmt: skip


def reference_rows(objects: dict[str, bytes]) -> Counter:
    """What the table should hold: a plain json.loads of every non-blank line."""
    rows: Counter = Counter()
    for data in objects.values():
        for line in data.decode("utf-8").splitlines():
            if not line.strip():
                continue
            record = {k.lower(): v for k, v in json.loads(line).items()}
            rows[tuple(record.get(c.name) for c in COLUMNS)] += 1
    return rows


def copied_rows(cursor: FakeCursor) -> list[tuple]:
    """What the fake database received, decoded from COPY text and typed."""
    return [
        tuple(None if v is None else TYPES[c.name](v) for c, v in zip(COLUMNS, row, strict=True))
        for row in parse_copy_text(cursor.copied, len(COLUMNS))
    ]


WORDS = ["Ólafur", "東京", "tab\there", "new\nline", "back\\slash", "quote'\"", "", "plain", "\\N"]


def random_record(rng: random.Random) -> dict:
    record: dict = {"ts": rng.randrange(1_500_000_000_000, 1_600_000_000_000)}
    if rng.random() < 0.8:
        record[rng.choice(["artist", "Artist"])] = " ".join(rng.choices(WORDS, k=3))
    if rng.random() < 0.8:
        record["itemInSession"] = rng.randrange(0, 200)
    if rng.random() < 0.7:
        record["length"] = rng.choice([None, round(rng.uniform(1, 600), 5), 1e-7, 3])
    record["page"] = rng.choice(["NextSong", "Home", None])
    if rng.random() < 0.9:
        record["userId"] = rng.choice(["", "39", "101"])
    return record


def make_objects(rng: random.Random, count: int, lines: tuple[int, int]) -> dict[str, bytes]:
    objects = {}
    for n in range(count):
        body = "\n".join(
            json.dumps(random_record(rng), ensure_ascii=rng.random() < 0.5)
            for _ in range(rng.randint(*lines))
        )
        if rng.random() < 0.3:
            body = "\n" + body.replace("\n", "\n\n", 1) + "\n   \n"
        objects[f"log_data/2018/11/{n:04d}.json"] = body.encode()
    return objects


# Queues copy_objects creates, so that a hung test can unblock its worker threads.
_QUEUES: list[queue.Queue] = []


@pytest.fixture(autouse=True)
def track_queues(monkeypatch):
    """Let json_copy create its queues through a subclass that only records them."""

    class TrackedQueue(queue.Queue):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            _QUEUES.append(self)

    monkeypatch.setattr(json_copy, "queue", SimpleNamespace(Queue=TrackedQueue, Empty=queue.Empty))
    yield
    _QUEUES.clear()


def _drain_while(thread: threading.Thread, queues: list[queue.Queue]) -> None:
    while thread.is_alive():
        for chunks in queues:
            with contextlib.suppress(queue.Empty):
                chunks.get(timeout=0.05)


def run_with_timeout(fn: Callable[[], object], timeout: float = TIMEOUT) -> dict:
    """Run ``fn`` in a thread; fail (instead of hanging the session) if it does not return."""
    box: dict = {}

    def target() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        # Unblock workers stuck on a full queue so the process can still exit, then fail.
        drainer = threading.Thread(target=_drain_while, args=(thread, list(_QUEUES)), daemon=True)
        drainer.start()
        thread.join(10)
        drainer.join(1)
        pytest.fail(f"copy_objects did not return within {timeout} s (deadlock)")
    assert not [t for t in threading.enumerate() if t.name == "json-copy-producer"]
    return box


def copy(
    cursor: FakeCursor,
    objects: dict[str, bytes],
    keys: Iterable[str] | None = None,
    max_workers: int = 8,
    read_lines: Callable[[str], Iterable[bytes]] | None = None,
    rejects: RejectCollector | None = None,
) -> dict:
    """copy_objects over ``objects`` (read through a fake S3 client) under a timeout."""
    keys = list(objects) if keys is None else list(keys)
    read = read_lines or line_reader(FakeS3Client({BUCKET: objects}), BUCKET)
    return run_with_timeout(
        lambda: copy_objects(
            cursor, TABLE, COLUMNS, keys, read, max_workers=max_workers, rejects=rejects
        )
    )


def test_many_tiny_objects_match_a_plain_parse():
    objects = make_objects(random.Random(1), count=300, lines=(0, 4))
    cursor = FakeCursor()
    box = copy(cursor, objects)
    expected = reference_rows(objects)
    assert box.get("error") is None
    assert box["result"] == LoadResult(objects=300, rows=sum(expected.values()))
    assert cursor.copies == [COPY_SQL]
    assert Counter(copied_rows(cursor)) == expected
    assert sum(expected.values()) > 300  # the data is not trivially small


def test_multi_chunk_object_keeps_its_rows_in_order():
    rng = random.Random(2)
    big = []
    for n in range(6000):
        record = random_record(rng)
        record["artist"] = f"{n:05d} " + "x" * 500
        big.append(json.dumps(record))
    objects = {"song_data/big.json": "\n".join(big).encode()}
    objects.update(make_objects(rng, count=20, lines=(1, 3)))

    cursor = FakeCursor()
    box = copy(cursor, objects, max_workers=4)
    assert box.get("error") is None
    assert len(cursor.copied) > 2 * CHUNK_BYTES  # the big object went out in several chunks
    rows = copied_rows(cursor)
    assert Counter(rows) == reference_rows(objects)
    assert box["result"] == LoadResult(objects=21, rows=len(rows))
    big_rows = [r[0][:5] for r in rows if r[0] and r[0].endswith("x" * 500)]
    assert big_rows == [f"{n:05d}" for n in range(6000)]


def test_blank_lines_are_skipped():
    objects = {"a.json": b'\n{"ts": 1}\n\n  \n{"ts": 2, "page": "Home"}\n\n', "b.json": b"\n\n"}
    cursor = FakeCursor()
    box = copy(cursor, objects)
    assert box["result"] == LoadResult(objects=2, rows=2)
    assert sorted(copied_rows(cursor), key=lambda r: r[4]) == [
        (None, None, None, None, 1, None),
        (None, None, None, "Home", 2, None),
    ]


def test_crlf_line_endings_are_read_like_lf():
    objects = {"a.json": b'{"ts": 1, "artist": "x"}\r\n{"ts": 2}\r\n'}
    cursor = FakeCursor()
    box = copy(cursor, objects)
    assert box["result"].rows == 2
    assert sorted(r[4] for r in copied_rows(cursor)) == [1, 2]


def test_no_rows_at_all():
    cursor = FakeCursor()
    box = copy(cursor, {"a.json": b"", "b.json": b"\n"})
    assert box["result"] == LoadResult(objects=2, rows=0)
    assert cursor.copied == b""
    assert cursor.copies == [COPY_SQL]


@pytest.mark.parametrize("small_queue", [False, True])
def test_bad_record_in_one_object_raises_staging_error_without_deadlock(monkeypatch, small_queue):
    if small_queue:
        # Tiny chunks and a one-slot queue: workers block on put while the error surfaces.
        monkeypatch.setattr(json_copy, "CHUNK_BYTES", 64)
        monkeypatch.setattr(json_copy, "QUEUE_CHUNKS", 1)
    objects = make_objects(random.Random(3), count=200, lines=(5, 20))
    bad_key = "log_data/2018/11/0057.json"
    objects[bad_key] = b'{"ts": 1}\n{"ts": 2}\n{"ts": "abc"}\n'
    box = copy(FakeCursor(), objects)
    error = box.get("error")
    assert isinstance(error, StagingError), box
    assert str(error) == f"{bad_key} line 3: ts must be an integer, got 'abc'"


def test_malformed_object_raises_staging_error_naming_it():
    objects = make_objects(random.Random(4), count=10, lines=(1, 3))
    objects["log_data/2018/11/0003.json"] = b'{"ts": 1}\n{"ts": \n'
    box = copy(FakeCursor(), objects)
    assert isinstance(box.get("error"), StagingError)
    assert str(box["error"]).startswith("log_data/2018/11/0003.json line 2: malformed JSON")


def test_an_error_reading_an_object_propagates_unchanged():
    objects = make_objects(random.Random(5), count=50, lines=(1, 5))
    client = FakeS3Client({BUCKET: objects})
    read = line_reader(client, BUCKET)
    failure = ConnectionError("read timeout on log_data/2018/11/0010.json")

    def read_lines(key: str):
        if key.endswith("0010.json"):
            raise failure
        return read(key)

    box = copy(FakeCursor(), objects, read_lines=read_lines)
    assert box.get("error") is failure


@pytest.mark.parametrize("fail_after_reads", [0, 1, 3])
def test_copy_failing_midway_propagates_without_hanging(monkeypatch, fail_after_reads):
    monkeypatch.setattr(json_copy, "CHUNK_BYTES", 256)
    monkeypatch.setattr(json_copy, "QUEUE_CHUNKS", 2)
    objects = make_objects(random.Random(6), count=300, lines=(10, 30))
    cursor = FailingCopyCursor(fail_after_reads=fail_after_reads)
    box = copy(cursor, objects)
    error = box.get("error")
    assert isinstance(error, RuntimeError), box
    assert str(error) == "server closed the connection unexpectedly"
    assert cursor.copy_reads == fail_after_reads


# ----------------------------------------------------------------------------- rejects


def test_reject_collector_refuses_a_negative_limit():
    with pytest.raises(ValueError, match="max_rejects must be >= 0"):
        RejectCollector(-1)


def test_reject_collector_keeps_rejects_sorted_until_one_too_many():
    rejects = RejectCollector(max_rejects=2)
    rejects.add("b.json", 3, RecordError("b.json line 3", "bad b3"), b'{"ts": "x"}')
    rejects.add("a.json", 7, RecordError("a.json line 7", "bad a7"), "[1]")
    assert rejects.rejects == [
        Reject("a.json", 7, "bad a7", "[1]"),
        Reject("b.json", 3, "bad b3", '{"ts": "x"}'),
    ]
    with pytest.raises(TooManyRejectsError) as info:
        rejects.add("a.json", 2, RecordError("a.json line 2", "bad a2"), b"{")
    assert str(info.value) == (
        "more than 2 bad record(s) (max_rejects); first: "
        "a.json line 2: bad a2; a.json line 7: bad a7; b.json line 3: bad b3"
    )


def test_reject_collector_names_at_most_five_offenders():
    rejects = RejectCollector(max_rejects=6)
    for n in range(1, 7):
        rejects.add("k.json", n, RecordError(f"k.json line {n}", f"r{n}"), b"x")
    with pytest.raises(TooManyRejectsError) as info:
        rejects.add("k.json", 7, RecordError("k.json line 7", "r7"), b"x")
    message = str(info.value)
    assert message.startswith("more than 6 bad record(s) (max_rejects); first: k.json line 1: r1;")
    assert "k.json line 5: r5" in message
    assert "line 6" not in message and "line 7" not in message


def test_reject_collector_zero_tolerance_raises_on_the_first():
    rejects = RejectCollector(0)
    with pytest.raises(TooManyRejectsError, match=r"first: k.json line 1: nope$"):
        rejects.add("k.json", 1, RecordError("k.json line 1", "nope"), b"x")


def test_reject_keeps_the_raw_line_decoded_and_cut():
    rejects = RejectCollector(max_rejects=5)
    rejects.add("k.json", 1, RecordError("k.json line 1", "r"), b'{"a": "caf\xc3\xa9", \xff}')
    rejects.add("k.json", 2, RecordError("k.json line 2", "r"), "y" * (REJECT_LINE_CHARS + 10))
    first, second = rejects.rejects
    assert first.raw_line == '{"a": "café", \ufffd}'
    assert second.raw_line == "y" * REJECT_LINE_CHARS


def test_encode_object_sets_bad_records_aside_with_a_collector():
    lines = [b'{"ts": 1}', b"not json", b"", b'{"page": "Home"}', b'{"ts": 2}']
    rejects = RejectCollector(max_rejects=10)
    produced = list(encode_object("day.json", lines, RowEncoder(COLUMNS), rejects))
    assert produced == ["\\N\t\\N\t\\N\t\\N\t1\t\\N\n", "\\N\t\\N\t\\N\t\\N\t2\t\\N\n"]
    assert [(r.source_key, r.line_number, r.raw_line) for r in rejects.rejects] == [
        ("day.json", 2, "not json"),
        ("day.json", 4, '{"page": "Home"}'),
    ]
    assert rejects.rejects[0].reason.startswith("malformed JSON (")
    assert rejects.rejects[1].reason == "required field 'ts' is missing or null"


BAD_LINES = [
    (b'{"ts": "abc"}', "ts must be an integer, got 'abc'"),
    (b"{not json", None),
    (b"[1, 2]", "expected a JSON object, got list"),
    (b'{"page": "Home"}', "required field 'ts' is missing or null"),
    (b'{"ts": 99999999999999999999}', "ts 1e+20 is out of the bigint range"),
]


def with_bad_lines(objects: dict[str, bytes], every: int) -> tuple[dict[str, bytes], list]:
    """Append a bad line to every ``every``-th object; returns the objects and the rejects
    expected as (key, line number, reason or None for 'malformed JSON', raw line)."""
    spoiled, expected = dict(objects), []
    for n, key in enumerate(sorted(objects)):
        if n % every:
            continue
        body = objects[key]
        if body and not body.endswith(b"\n"):
            body += b"\n"
        bad, reason = BAD_LINES[n % len(BAD_LINES)]
        spoiled[key] = body + bad + b"\n"
        expected.append((key, len(body.splitlines()) + 1, reason, bad.decode()))
    return spoiled, sorted(expected)


def test_copy_with_rejects_loads_the_good_rows_and_sets_the_bad_aside():
    good = make_objects(random.Random(7), count=120, lines=(0, 6))
    objects, expected = with_bad_lines(good, every=7)
    rejects = RejectCollector(max_rejects=len(expected))
    cursor = FakeCursor()
    box = copy(cursor, objects, rejects=rejects)
    reference = reference_rows(good)
    assert box.get("error") is None, box
    assert box["result"] == LoadResult(objects=120, rows=sum(reference.values()))
    assert Counter(copied_rows(cursor)) == reference
    got = [(r.source_key, r.line_number, r.reason, r.raw_line) for r in rejects.rejects]
    assert len(got) == len(expected) == 18
    for (key, number, reason, raw), (e_key, e_number, e_reason, e_raw) in zip(
        got, expected, strict=True
    ):
        assert (key, number, raw) == (e_key, e_number, e_raw)
        assert reason == e_reason if e_reason else reason.startswith("malformed JSON (")


@pytest.mark.parametrize("small_queue", [False, True])
def test_copy_with_too_many_rejects_fails_without_deadlock(monkeypatch, small_queue):
    if small_queue:
        monkeypatch.setattr(json_copy, "CHUNK_BYTES", 64)
        monkeypatch.setattr(json_copy, "QUEUE_CHUNKS", 1)
    objects, expected = with_bad_lines(make_objects(random.Random(8), 200, (5, 20)), every=10)
    rejects = RejectCollector(max_rejects=3)
    box = copy(FakeCursor(), objects, rejects=rejects)
    error = box.get("error")
    assert isinstance(error, TooManyRejectsError), box
    assert str(error).startswith("more than 3 bad record(s) (max_rejects); first: ")
    assert len(rejects.rejects) >= 4
    assert {(r.source_key, r.line_number) for r in rejects.rejects} <= {
        (key, number) for key, number, _, _ in expected
    }
