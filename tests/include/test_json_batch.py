"""Unit tests for sparkify.json_batch: chunks of JSON lines to binary COPY rows.

The fast path (msgspec structs, checks over whole columns) must stage exactly what the
exact path (RowEncoder, one record at a time) stages: the same rows, the same rejects
with the same line numbers and reasons, the same plays. Each test compares the two on
chunks holding the cases that matter, and reads the rows back with plain ``struct``.
"""

from __future__ import annotations

import json
import random
from datetime import datetime

import pytest

from sparkify.json_batch import FAST_LINES, ChunkEncoder, hourly_counts
from sparkify.json_encode import Column
from sparkify.staging_rules import RULES
from tests.fakes import STAGING_EVENTS_INFO, STAGING_SONGS_INFO
from tests.fakes import logged_out_event as logged_out
from tests.fakes import play_event as play
from tests.fakes import song_record as song
from tests.include.copy_binary import parse_copy_binary

EVENT_COLUMNS = [Column(*c) for c in STAGING_EVENTS_INFO]
SONG_COLUMNS = [Column(*c) for c in STAGING_SONGS_INFO]
STAGED_AT = datetime(2018, 11, 2, 3, 4, 5, 678901)
CONSTANTS = {"run_id": "scheduled__2018-11-01", "staged_at": STAGED_AT}
HOUR = 3_600_000
KEY = "log_data/2018/11/2018-11-01-events.json"


def lines_of(records: list[dict | str]) -> list[bytes]:
    return [
        (r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)).encode() for r in records
    ]


def both_ways(encoder: ChunkEncoder, lines: list[bytes], first_line: int = 1):
    """(rows, rejects, plays) of the encoder's choice and of the exact path alone."""
    columns = [c.data_type for c in encoder.columns]
    chosen = encoder.encode(KEY, first_line, lines)
    exact = encoder._exact(KEY, first_line, lines)
    return [
        (parse_copy_binary(_framed(c.data), columns), c.rejects, hourly_counts(c.plays))
        for c in (chosen, exact)
    ]


def _framed(rows: bytes) -> bytes:
    return b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8 + rows + b"\xff\xff"


def events_encoder() -> ChunkEncoder:
    return ChunkEncoder(EVENT_COLUMNS, RULES["staging_events"], CONSTANTS)


def test_clean_events_take_the_fast_path_and_equal_the_exact_one(monkeypatch):
    encoder = events_encoder()
    records = [play(itemInSession=n, ts=1541030400000 + n * 60_000) for n in range(100)]
    records += [logged_out(itemInSession=n) for n in range(20)]
    lines = lines_of(records)
    calls = []
    monkeypatch.setattr(encoder, "_exact", lambda *a: calls.append(a))
    chunk = encoder.encode(KEY, 1, lines)
    assert calls == [], "a clean chunk went the exact way"
    monkeypatch.undo()
    (fast_rows, fast_rejects, fast_plays), exact = both_ways(encoder, lines)
    assert (fast_rows, fast_rejects, fast_plays) == exact
    assert chunk.rows == len(fast_rows) == 120
    assert fast_plays == {1541030400000 // HOUR: 60, 1541030400000 // HOUR + 1: 40}
    first = dict(zip([c.name for c in EVENT_COLUMNS], fast_rows[0], strict=True))
    assert first["source_key"] == KEY
    assert first["run_id"] == CONSTANTS["run_id"]
    assert first["staged_at"] == STAGED_AT
    assert first["firstname"] == "Zoë" and first["iteminsession"] == 0
    assert first["userid"] == "42" and first["length"] == 201.5


NEEDED = " (needed when page = 'NextSong')"
NOT_WHOLE = "userid is not a whole number up to 2147483647" + NEEDED
NUL = "song holds a NUL character (\\u0000), which the warehouse cannot store"
BAD_EVENTS = [
    (play(userId=None), "userid is missing or null" + NEEDED),
    (play(userId="4x"), NOT_WHOLE),
    (play(userId="99999999999"), NOT_WHOLE),
    (play(sessionId=2**31), "sessionid 2147483648 is out of the integer range"),
    (play(sessionId=1.5), "sessionid must be an integer, got 1.5"),
    (play(ts=None), "required field 'ts' is missing or null"),
    (play(length=True), "length must be a number, got True"),
    (play(gender="é" * 5), "gender is 10 bytes of UTF-8, longer than the column's 8"),
    (play(auth="x" * 33), "auth is 33 bytes of UTF-8, longer than the column's 32"),
    (play(song="a\u0000b"), NUL),
    ('{"ts": 1, ', None),  # malformed JSON
    ("[1, 2]", "expected a JSON object, got list"),
]  # fmt: skip


@pytest.mark.parametrize(("bad", "reason"), BAD_EVENTS)
def test_a_bad_record_anywhere_in_a_chunk_is_refused_as_the_exact_path_refuses_it(bad, reason):
    encoder = events_encoder()
    records: list = [play(itemInSession=n) for n in range(30)]
    records.insert(17, bad)
    (rows, rejects, plays), exact = both_ways(encoder, lines_of(records), first_line=401)
    assert (rows, rejects, plays) == exact
    assert len(rows) == 30
    [(number, why, raw)] = rejects
    assert number == 418 and raw == lines_of([bad])[0]
    assert why == reason if reason else why.startswith("malformed JSON (")


def test_values_the_fast_path_cannot_vouch_for_are_staged_as_the_exact_path_stages_them():
    encoder = events_encoder()
    records: list = [play(itemInSession=n) for n in range(30)]
    records[3] = play(itemInSession=3.0, status=201)  # an integral float in an integer column
    records[4] = play(itemInSession=4, userId=42)  # a number in a text column
    records[5] = play(itemInSession=5, artist={"name": "x"}, auth=True)  # nested JSON, bool
    records[6] = play(itemInSession=6, lastName="é" * 128)  # 256 bytes: fits VARCHAR(256)
    records[7] = {k.upper(): v for k, v in play(itemInSession=7).items()}  # another layout
    records[8] = {**play(itemInSession=8), "extra": [1, {"a": None}]}  # a key no column takes
    records[9] = without_key(play(itemInSession=9), "song")  # a nullable column absent
    (rows, rejects, plays), exact = both_ways(encoder, lines_of(records))
    assert (rows, rejects, plays) == exact
    assert rejects == []
    by_name = [dict(zip([c.name for c in EVENT_COLUMNS], r, strict=True)) for r in rows]
    assert by_name[3]["iteminsession"] == 3 and by_name[4]["userid"] == "42"
    assert by_name[5]["artist"] == '{"name": "x"}' and by_name[5]["auth"] == "true"
    assert by_name[6]["lastname"] == "é" * 128 and by_name[9]["song"] is None
    assert sum(plays.values()) == 30


def without_key(record: dict, key: str) -> dict:
    return {k: v for k, v in record.items() if k != key}


def test_the_same_play_twice_counts_once_and_hours_follow_utc():
    encoder = events_encoder()
    records = [play(itemInSession=n % 20, ts=1541030400000 + n * 100_000) for n in range(40)]
    records += [play(itemInSession=0, ts=-1), play(itemInSession=1, ts=-HOUR - 1)]
    (rows, rejects, plays), exact = both_ways(encoder, lines_of(records))
    assert (rows, rejects, plays) == exact
    assert len(rows) == 42 and rejects == []
    # 40 events, 20 distinct identities in the first hour and 4 more after it; the
    # pre-epoch times truncate toward zero as SQL's integer division does.
    assert plays == {-1: 1, 0: 1, 1541030400000 // HOUR: 20, 1541030400000 // HOUR + 1: 4}


def test_songs_without_rules_scope_and_blank_lines_counted_in_numbers():
    encoder = ChunkEncoder(SONG_COLUMNS, RULES["staging_songs"])
    records = [song(song_id=f"SO{n:04d}", year=2000 + n) for n in range(FAST_LINES + 4)]
    lines = lines_of(records)
    lines[2:2] = [b"", b"   ", b"\r"]
    lines.append(lines_of([song(title=None)])[0])
    (rows, rejects, plays), exact = both_ways(encoder, lines, first_line=1)
    assert (rows, rejects, plays) == exact
    assert len(rows) == FAST_LINES + 4
    assert [(n, why) for n, why, _ in rejects] == [(len(lines), "title is missing or null")]
    assert rows[0][-1] == KEY and plays == {}


def test_random_chunks_equal_the_exact_path():
    rng = random.Random(11)
    encoder = events_encoder()
    choices = [
        lambda: play(itemInSession=rng.randrange(300), ts=rng.randrange(1, 10**13)),
        lambda: logged_out(sessionId=rng.randrange(10**6)),
        lambda: play(userId=rng.choice(["1", "", "07", "2147483647", "2147483648", None])),
        lambda: play(artist=rng.choice(["tab\there", "new\nline", "\\N", "東京" * 300, ""])),
        lambda: play(length=rng.choice([None, 0, 3, 1e308, -0.0, 2**70])),
        lambda: play(status=rng.choice([None, 0, -(2**31), 2**31 - 1, 2**31])),
    ]
    for attempt in range(30):
        records = [rng.choice(choices)() for _ in range(rng.randrange(1, 60))]
        (rows, rejects, plays), exact = both_ways(encoder, lines_of(records))
        assert (rows, rejects, plays) == exact, attempt


def test_a_column_type_without_a_binary_format_is_refused_up_front():
    with pytest.raises(ValueError, match="no binary COPY"):
        ChunkEncoder([Column("at", "interval", True)])
