"""Unit tests for sparkify.json_encode: JSON lines -> COPY text, per column type."""

from __future__ import annotations

import json

import pytest

from sparkify.json_encode import Column, RowEncoder, encode_object
from sparkify.staging_rejects import RecordError, RejectCollector, StagingError
from tests.fakes import parse_copy_text

COLUMNS = [
    Column("artist", "character varying", True),
    Column("iteminsession", "integer", True),
    Column("length", "double precision", True),
    Column("page", "text", True),
    Column("ts", "bigint", False),
    Column("userid", "character varying", True),
]


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
