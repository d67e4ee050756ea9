"""Unit tests for sparkify.staging_rejects: the bad-record types and the collector."""

from __future__ import annotations

import pytest

from sparkify.staging_rejects import (
    REJECT_LINE_CHARS,
    RecordError,
    Reject,
    RejectCollector,
    StagingError,
    TooManyRejectsError,
)


def test_staging_error_is_a_value_error():
    assert issubclass(StagingError, ValueError)
    assert issubclass(RecordError, StagingError)
    assert issubclass(TooManyRejectsError, StagingError)


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


def test_rejects_without_a_line_number_sort_first_and_read_without_one():
    rejects = RejectCollector(max_rejects=2)
    rejects.add("b.json", 3, RecordError("b.json line 3", "bad"), None)
    rejects.add("b.json", None, RecordError("b.json", "rule"), '{"userid": "x"}')
    assert rejects.rejects == [
        Reject("b.json", None, "rule", '{"userid": "x"}'),
        Reject("b.json", 3, "bad", None),
    ]
    assert len(rejects) == 2
    with pytest.raises(TooManyRejectsError) as info:
        rejects.add("a.json", None, RecordError("a.json", "other rule"), None)
    assert str(info.value) == (
        "more than 2 bad record(s) (max_rejects); first: "
        "a.json: other rule; b.json: rule; b.json line 3: bad"
    )
