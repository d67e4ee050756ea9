"""PostgreSQL's binary COPY format read back in plain Python, for the staging tests.

Independent of the code under test (which has psycopg format the rows): the format as
the PostgreSQL manual's "Binary Format" section of COPY describes it.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from datetime import datetime, timedelta

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
POSTGRES_EPOCH = datetime(2000, 1, 1)
DECODERS = {
    "smallint": lambda b: struct.unpack("!h", b)[0],
    "integer": lambda b: struct.unpack("!i", b)[0],
    "bigint": lambda b: struct.unpack("!q", b)[0],
    "double precision": lambda b: struct.unpack("!d", b)[0],
    "real": lambda b: struct.unpack("!f", b)[0],
    "character varying": lambda b: b.decode("utf-8"),
    "text": lambda b: b.decode("utf-8"),
    "character": lambda b: b.decode("utf-8"),
    "timestamp without time zone": lambda b: (
        POSTGRES_EPOCH + timedelta(microseconds=struct.unpack("!q", b)[0])
    ),
}


def parse_copy_binary(data: bytes, types: Sequence[str]) -> list[tuple]:
    """The rows of a binary COPY stream, each value decoded by its column's ``data_type``."""
    assert data[:11] == SIGNATURE, "binary COPY must start with the signature"
    (flags, extension) = struct.unpack("!ii", data[11:19])
    assert flags == 0
    at = 19 + extension
    rows = []
    while True:
        (count,) = struct.unpack("!h", data[at : at + 2])
        at += 2
        if count == -1:
            assert at == len(data), "data after the binary COPY trailer"
            return rows
        assert count == len(types), f"{count} fields, expected {len(types)}"
        row = []
        for kind in types:
            (size,) = struct.unpack("!i", data[at : at + 4])
            at += 4
            if size == -1:
                row.append(None)
                continue
            row.append(DECODERS[kind](data[at : at + size]))
            at += size
        rows.append(tuple(row))
