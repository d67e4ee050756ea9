"""Unit tests for sparkify.staging_rules: the declaration, and its Python side as the
PostgreSQL loader applies it (what is staged, what is set aside and why, plays counted).

The SQL side runs on a real PostgreSQL in tests/include/test_redshift_copy.py, against
the same records, so that both compilations are seen to refuse the same ones.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from sparkify import staging_rules
from sparkify.json_copy import LoadResult, copy_objects
from sparkify.json_encode import Column, RowEncoder, encode_object
from sparkify.staging_rejects import Reject, RejectCollector
from sparkify.staging_rules import (
    RULES,
    PlayCount,
    TableRules,
    hour_start,
    hourly_plays,
    rule_list,
    rules_for,
)
from tests.fakes import (
    STAGING_EVENTS_INFO,
    STAGING_SONGS_INFO,
    FakeCursor,
    parse_copy_text,
    without,
)
from tests.fakes import logged_out_event as logged_out_home
from tests.fakes import play_event as play
from tests.fakes import song_record as song

EVENT_COLUMNS = [Column(*c) for c in STAGING_EVENTS_INFO]
SONG_COLUMNS = [Column(*c) for c in STAGING_SONGS_INFO]
NOV1 = 1541030400000  # 2018-11-01T00:00:00Z in epoch ms
HOUR = 3_600_000
EVENTS, SONGS = RULES["staging_events"], RULES["staging_songs"]
EVENTS_DECLARED = TableRules(
    table="staging_events",
    when=("page", "NextSong"),
    required=("userid", "sessionid", "iteminsession"),
    whole_numbers=("userid",),
    plays=PlayCount(identity=("userid", "sessionid", "iteminsession"), time_column="ts"),
)
SONGS_DECLARED = TableRules(table="staging_songs", required=("song_id", "artist_id", "title"))
NEEDED = " (needed when page = 'NextSong')"


def stage_lines(
    records: list[dict | str], columns: list[Column], rules: TableRules, key: str = "k.json"
) -> tuple[list[tuple], list[Reject], dict]:
    """Encode JSON lines as the loader does: (staged rows, rejects, plays collected)."""
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records]
    rejects = RejectCollector(max_rejects=100)
    plays: dict = {}
    encoder = RowEncoder(columns, rules)
    text = "".join(encode_object(key, [line.encode() for line in lines], encoder, rejects, plays))
    return parse_copy_text(text.encode(), len(columns)), rejects.rejects, plays


# ----------------------------------------------------------------------------- declaration


def test_the_rules_as_declared():
    assert (EVENTS, SONGS) == (EVENTS_DECLARED, SONGS_DECLARED)
    assert rules_for("staging_events") is EVENTS
    assert rules_for("songplays") is None


def test_rule_list_orders_required_before_numbers_and_says_why():
    assert [(r.column, r.kind, r.reason) for r in rule_list(EVENTS)] == [
        ("userid", "required", "userid is missing or null" + NEEDED),
        ("sessionid", "required", "sessionid is missing or null" + NEEDED),
        ("iteminsession", "required", "iteminsession is missing or null" + NEEDED),
        ("userid", "whole_number", "userid is not a whole number up to 2147483647" + NEEDED),
    ]
    assert [r.reason for r in rule_list(SONGS)] == [
        "song_id is missing or null",
        "artist_id is missing or null",
        "title is missing or null",
    ]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"table": "Bad-Name"}, "'Bad-Name' is not a valid SQL identifier"),
        ({"table": "t", "required": ("ok", "no way")}, "'no way' is not a valid SQL identifier"),
        ({"table": "t", "when": ("page", "it's")}, "a rule's value must be ASCII letters/digits"),
        (
            {"table": "t", "plays": PlayCount(("a",), "ts;")},
            "'ts;' is not a valid SQL identifier",
        ),
    ],
)
def test_declarations_are_validated(arguments, message):
    with pytest.raises(ValueError, match=message):
        TableRules(**arguments)


def test_a_table_lacking_a_ruled_column_is_refused_naming_it():
    columns = [c for c in EVENT_COLUMNS if c.name != "sessionid"]
    with pytest.raises(ValueError, match=r"staging_events lacks .* \['sessionid'\]"):
        RowEncoder(columns, EVENTS)


# ----------------------------------------------------------------------------- events


def test_plays_without_identity_or_with_a_bad_user_id_are_set_aside_others_stage():
    records = [
        play(itemInSession=1),  # 1 staged
        play(sessionId=None, itemInSession=2),  # 2 null sessionId
        without(play(), "itemInSession"),  # 3 no itemInSession
        play(userId="abc", itemInSession=4),  # 4 non-numeric userId
        play(userId="", itemInSession=5),  # 5 a play with the logged-out user id
        logged_out_home(itemInSession=6),  # 6 logged out, not a play: staged as it is
        logged_out_home(sessionId=None, itemInSession=None),  # 7 not a play: staged
        without(play(itemInSession=8), "userId"),  # 8 no userId
        play(userId="2147483648", itemInSession=9),  # 9 beyond INTEGER
        play(userId="2147483647", itemInSession=10),  # 10 INTEGER's maximum: staged
        play(userId="0000000000042", itemInSession=11),  # 11 leading zeros: 42, staged
        play(userId="٤٢", itemInSession=12),  # 12 Arabic-Indic digits: not for CAST
        play(userId=42, itemInSession=13),  # 13 a JSON number: the text "42", staged
        play(song="Ha\u0000lo", itemInSession=14),  # 14 NUL in a text
    ]
    staged, rejects, _ = stage_lines(records, EVENT_COLUMNS, EVENTS)
    # (iteminsession, page, userid, source_key) of every staged row
    assert [(r[4], r[10], r[17], r[18]) for r in staged] == [
        ("1", "NextSong", "42", "k.json"),
        ("6", "Home", "", "k.json"),
        (None, "Home", "", "k.json"),
        ("10", "NextSong", "2147483647", "k.json"),
        ("11", "NextSong", "0000000000042", "k.json"),
        ("13", "NextSong", "42", "k.json"),
    ]
    number = "userid is not a whole number up to 2147483647" + NEEDED
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    assert rejects == [
        Reject("k.json", 2, "sessionid is missing or null" + NEEDED, lines[1]),
        Reject("k.json", 3, "iteminsession is missing or null" + NEEDED, lines[2]),
        Reject("k.json", 4, number, lines[3]),
        Reject("k.json", 5, number, lines[4]),
        Reject("k.json", 8, "userid is missing or null" + NEEDED, lines[7]),
        Reject("k.json", 9, number, lines[8]),
        Reject("k.json", 12, number, lines[11]),
        Reject(
            "k.json", 14, "song holds a NUL character (\\u0000), which the warehouse cannot store",
            lines[13],
        ),
    ]  # fmt: skip


def test_the_first_broken_rule_is_the_reason():
    # null sessionId and a bad userId: required fields are checked first, in order
    _, rejects, _ = stage_lines([play(sessionId=None, userId="x")], EVENT_COLUMNS, EVENTS)
    assert [r.reason for r in rejects] == ["sessionid is missing or null" + NEEDED]


def test_a_wrong_type_is_still_reported_as_such():
    _, rejects, _ = stage_lines([play(sessionId="seven")], EVENT_COLUMNS, EVENTS)
    assert [r.reason for r in rejects] == ["sessionid must be an integer, got 'seven'"]


# ----------------------------------------------------------------------------- songs


def test_songs_without_id_artist_or_title_are_set_aside():
    records = [
        song(),
        without(song(), "song_id"),
        song(artist_id=None),
        without(song(), "title"),
        song(title="Der Kleine\u0000Dompfaff"),
        song(title="", artist_location="Paris\u00a0France"),  # empty title: present, staged
    ]
    staged, rejects, plays = stage_lines(records, SONG_COLUMNS, SONGS, key="song_data/A/B/C/x.json")
    assert [(r[6], r[7]) for r in staged] == [
        ("SOUPIRU12A6D4FA1E1", "Der Kleine Dompfaff"),
        ("SOUPIRU12A6D4FA1E1", ""),
    ]
    assert [(r.line_number, r.reason) for r in rejects] == [
        (2, "song_id is missing or null"),
        (3, "artist_id is missing or null"),
        (4, "title is missing or null"),
        (5, "title holds a NUL character (\\u0000), which the warehouse cannot store"),
    ]
    assert plays == {}  # songs are not counted


# ----------------------------------------------------------------------------- plays


def test_plays_per_object_and_utc_hour_for_a_two_hour_sample():
    hour0, hour1 = NOV1, NOV1 + HOUR
    day1 = [
        play(ts=hour0 + 1000, itemInSession=0),
        play(ts=hour0 + 2000, itemInSession=1),
        play(ts=hour0 + 2000, itemInSession=1),  # the same play delivered twice: once
        play(ts=hour0 + 3000, itemInSession=2, sessionId=8),  # another session
        play(ts=hour0 + 4000, itemInSession=3, userId="abc"),  # set aside: not counted
        logged_out_home(ts=hour0 + 5000),  # not a play
        play(ts=hour1, itemInSession=4),  # the first millisecond of the next hour
        play(ts=hour1 + HOUR - 1, itemInSession=5),  # its last millisecond
        play(ts=hour1 + 10, itemInSession=0),  # a play of hour 0 again, in hour 1: counted
    ]
    day2 = [play(ts=hour1 + 7, itemInSession=9, userId="7"), logged_out_home(ts=hour1)]
    objects = {
        "log_data/a.json": "\n".join(json.dumps(r) for r in day1).encode(),
        "log_data/b.json": "\n".join(json.dumps(r) for r in day2).encode(),
        "log_data/c.json": json.dumps(logged_out_home()).encode(),  # no plays at all
    }
    rejects = RejectCollector(max_rejects=5)
    result = copy_objects(
        FakeCursor(), '"public"."staging_events"', EVENT_COLUMNS, sorted(objects),
        lambda key: objects[key].splitlines(), max_workers=2, rejects=rejects, rules=EVENTS,
    )  # fmt: skip
    h0 = NOV1 // HOUR
    assert result == LoadResult(
        objects=3,
        rows=11,
        plays={"log_data/a.json": {h0: 3, h0 + 1: 3}, "log_data/b.json": {h0 + 1: 1},
               "log_data/c.json": {}},
    )  # fmt: skip
    assert (hour_start(h0), hour_start(h0 + 1)) == (datetime(2018, 11, 1), datetime(2018, 11, 1, 1))
    assert [(r.source_key, r.line_number) for r in rejects.rejects] == [("log_data/a.json", 5)]


def test_without_rules_nothing_is_counted():
    objects = {"a.json": json.dumps(play()).encode()}
    result = copy_objects(
        FakeCursor(), "t", EVENT_COLUMNS, ["a.json"], lambda k: [objects[k]], max_workers=1
    )
    assert result == LoadResult(objects=1, rows=1)


def test_hours_truncate_toward_zero_as_sql_does_and_a_null_time_is_no_hour():
    check = staging_rules.record_check(
        EVENTS, ["page", "userid", "sessionid", "iteminsession", "ts"], "\\N"
    )
    tally: dict = {}
    for ts, user in [
        ("7199999", "1"), ("3600000", "1"),  # hour 1, the same play twice: once
        ("-1", "2"),  # before the epoch: hour 0, as SQL's -1 / 3600000
        ("-3600001", "3"),  # hour -1
        ("\\N", "4"),  # no time: no hour
    ]:  # fmt: skip
        assert check(["NextSong", user, "1", "1", ts], tally) is None
    assert tally == {1: {"1\t1\t1"}, 0: {"2\t1\t1"}, -1: {"3\t1\t1"}}
    assert hourly_plays(tally) == {-1: 1, 0: 1, 1: 1}
