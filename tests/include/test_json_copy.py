"""Unit tests for sparkify.json_copy: the streaming COPY of JSON lines (json_batch encodes).

The streaming tests compare what a fake cursor's ``copy_expert`` read, decoded from COPY's
binary format (``copy_binary``, plain ``struct``), with a plain ``json.loads`` of every
line: nothing trusts the encoder. Most run both with and without the encoding child
process (``processes``).
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
from sparkify.json_copy import CHUNK_BYTES, LoadResult, copy_objects
from sparkify.json_encode import Column
from sparkify.s3_objects import line_blocks
from sparkify.sql import read_sql
from sparkify.staging_rejects import RejectCollector, StagingError, TooManyRejectsError
from sparkify.staging_tables import table_columns
from tests.fakes import FailingCopyCursor, FakeCursor, FakeS3Client, Result
from tests.include.copy_binary import parse_copy_binary

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
    '"userid") FROM STDIN (FORMAT BINARY)'
)
BUCKET = "sparkify-test"
TIMEOUT = 15


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


def copied_rows(cursor: FakeCursor, columns: list[Column] = COLUMNS) -> list[tuple]:
    """What the fake database received, decoded from COPY's binary format."""
    rows = parse_copy_binary(cursor.copied, [c.data_type for c in columns])
    for row in rows:  # each value has its column's type
        for column, value in zip(columns, row, strict=True):
            assert value is None or type(value) is TYPES.get(column.name, type(value))
    return rows


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

    class TrackedPriorityQueue(queue.PriorityQueue):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            _QUEUES.append(self)

    monkeypatch.setattr(
        json_copy,
        "queue",
        SimpleNamespace(Queue=TrackedQueue, PriorityQueue=TrackedPriorityQueue, Empty=queue.Empty),
    )
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
    read_blocks: Callable[[str], Iterable[bytes]] | None = None,
    rejects: RejectCollector | None = None,
    processes: int = 0,
    columns: list[Column] = COLUMNS,
    constants: dict | None = None,
) -> dict:
    """copy_objects over ``objects`` (read through a fake S3 client) under a timeout."""
    keys = list(objects) if keys is None else list(keys)
    read = read_blocks or line_blocks(FakeS3Client({BUCKET: objects}), BUCKET)
    options = {"max_workers": max_workers, "rejects": rejects, "constants": constants}
    start_bytes = json_copy.WORKER_START_BYTES
    json_copy.WORKER_START_BYTES = 0  # the child starts at once, however small the test
    try:
        return run_with_timeout(
            lambda: copy_objects(cursor, TABLE, columns, keys, read, processes=processes, **options)
        )
    finally:
        json_copy.WORKER_START_BYTES = start_bytes


@pytest.mark.parametrize("processes", [0, 1])
def test_many_tiny_objects_match_a_plain_parse(processes):
    objects = make_objects(random.Random(1), count=300, lines=(0, 4))
    cursor = FakeCursor()
    box = copy(cursor, objects, processes=processes)
    expected = reference_rows(objects)
    assert box.get("error") is None
    assert box["result"] == LoadResult(objects=300, rows=sum(expected.values()))
    assert cursor.copies == [COPY_SQL]
    assert Counter(copied_rows(cursor)) == expected
    assert sum(expected.values()) > 300  # the data is not trivially small


@pytest.mark.parametrize("processes", [0, 1])
def test_multi_chunk_object_keeps_its_rows_in_order(processes):
    rng = random.Random(2)
    big = []
    for n in range(6000):
        record = random_record(rng)
        record["artist"] = f"{n:05d} " + "x" * 500
        big.append(json.dumps(record))
    objects = {"song_data/big.json": "\n".join(big).encode()}
    objects.update(make_objects(rng, count=20, lines=(1, 3)))

    cursor = FakeCursor()
    box = copy(cursor, objects, max_workers=4, processes=processes)
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
    assert copied_rows(cursor) == []  # the binary format's signature and trailer only
    assert cursor.copies == [COPY_SQL]


@pytest.mark.parametrize(("small_queue", "processes"), [(False, 0), (True, 0), (True, 1)])
def test_bad_record_in_one_object_raises_staging_error_without_deadlock(
    monkeypatch, small_queue, processes
):
    if small_queue:
        # Tiny chunks and a one-slot queue: workers block on put while the error surfaces.
        monkeypatch.setattr(json_copy, "CHUNK_BYTES", 64)
        monkeypatch.setattr(json_copy, "QUEUE_CHUNKS", 1)
    objects = make_objects(random.Random(3), count=200, lines=(5, 20))
    bad_key = "log_data/2018/11/0057.json"
    objects[bad_key] = b'{"ts": 1}\n{"ts": 2}\n{"ts": "abc"}\n'
    box = copy(FakeCursor(), objects, processes=processes)
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
    read = line_blocks(client, BUCKET)
    failure = ConnectionError("read timeout on log_data/2018/11/0010.json")

    def read_blocks(key: str):
        if key.endswith("0010.json"):
            raise failure
        return read(key)

    box = copy(FakeCursor(), objects, read_blocks=read_blocks)
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


@pytest.mark.parametrize("processes", [0, 1])
def test_copy_with_rejects_loads_the_good_rows_and_sets_the_bad_aside(processes):
    good = make_objects(random.Random(7), count=120, lines=(0, 6))
    objects, expected = with_bad_lines(good, every=7)
    rejects = RejectCollector(max_rejects=len(expected))
    cursor = FakeCursor()
    box = copy(cursor, objects, rejects=rejects, processes=processes)
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
