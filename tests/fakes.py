"""Small in-memory stand-ins for the things the unit tests must not reach: a DB-API
connection and cursor, an S3 client, and readers for PostgreSQL's COPY formats (text and
binary); and helpers defining Airflow connections through the environment.

They record what they were asked to do so tests can assert on it; they implement just
enough behaviour for the code under test, no more.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from botocore.response import StreamingBody

from sparkify.config import AWS_CONN_ID, WAREHOUSE_CONN_ID
from tests.include.copy_binary import SIGNATURE as COPY_BINARY_SIGNATURE
from tests.include.copy_binary import parse_copy_binary as decode_copy_binary

# ----------------------------------------------------------------------------- database

# information_schema.columns rows of the staging tables (create_tables.sql): name, type,
# nullable, maximum length; the tests of both staging paths read the tables through them.
STAGING_EVENTS_INFO = [
    ("artist", "character varying", True, 1024), ("auth", "character varying", True, 32),
    ("firstname", "character varying", True, 256), ("gender", "character varying", True, 8),
    ("iteminsession", "integer", True, None), ("lastname", "character varying", True, 256),
    ("length", "double precision", True, None), ("level", "character varying", True, 16),
    ("location", "character varying", True, 1024), ("method", "character varying", True, 16),
    ("page", "character varying", True, 64), ("registration", "double precision", True, None),
    ("sessionid", "integer", True, None), ("song", "character varying", True, 1024),
    ("status", "integer", True, None), ("ts", "bigint", False, None),
    ("useragent", "character varying", True, 1024), ("userid", "character varying", True, 32),
    ("source_key", "character varying", True, 1024), ("run_id", "character varying", True, 256),
    ("staged_at", "timestamp without time zone", True, None),
]  # fmt: skip
STAGING_SONGS_INFO = [
    ("num_songs", "integer", True, None), ("artist_id", "character varying", True, 32),
    ("artist_latitude", "double precision", True, None),
    ("artist_longitude", "double precision", True, None),
    ("artist_location", "character varying", True, 1024),
    ("artist_name", "character varying", True, 1024), ("song_id", "character varying", True, 32),
    ("title", "character varying", True, 1024), ("duration", "double precision", True, None),
    ("year", "integer", True, None), ("source_key", "character varying", True, 1024),
]  # fmt: skip


@dataclass
class Result:
    """What a statement produces on the fake cursor."""

    rows: list[tuple] = field(default_factory=list)
    description: list[tuple] | None = None
    rowcount: int = -1


Responder = Callable[[str, Any], "Result | None"]


class FakeCursor:
    """A DB-API cursor recording ``execute``/``executemany``/``copy_expert`` calls.

    ``respond(sql, params)`` decides each statement's result (a ``Result``, or ``None`` for
    no rows) or raises to make the statement fail.
    """

    def __init__(self, respond: Responder | None = None) -> None:
        self.respond = respond or (lambda sql, params: None)
        self.executed: list[tuple[str, Any]] = []
        self.executemany_calls: list[tuple[str, list]] = []
        self.copies: list[str] = []
        self.copied = b""
        self.copy_reads = 0
        self.rows: list[tuple] = []
        self.description: list[tuple] | None = None
        self.rowcount = -1
        self.closed = False
        self.connection: FakeConnection | None = None

    # context manager, as psycopg2's cursor
    def __enter__(self) -> FakeCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.closed = True

    def execute(self, sql: str, params: Any = None) -> None:
        self.executed.append((sql, params))
        result = self.respond(sql, params) or Result()
        self.rows = list(result.rows)
        self.description = result.description
        self.rowcount = result.rowcount if result.rowcount != -1 else len(result.rows)

    def executemany(self, sql: str, seq: Iterable[Sequence[Any]]) -> None:
        self.executemany_calls.append((sql, [tuple(row) for row in seq]))

    def fetchone(self) -> tuple | None:
        return self.rows.pop(0) if self.rows else None

    def fetchall(self) -> list[tuple]:
        rows, self.rows = self.rows, []
        return rows

    def __iter__(self):
        while self.rows:
            yield self.rows.pop(0)

    def copy_expert(self, sql: str, file: Any, size: int = 8192) -> None:
        """Read ``file`` to its end with ``read(size)``, like psycopg2 does."""
        self.copies.append(sql)
        data = bytearray()
        while True:
            chunk = file.read(size)
            if not chunk:
                break
            self.copy_reads += 1
            data += chunk
        self.copied = bytes(data)

    @property
    def statements(self) -> list[str]:
        return [sql for sql, _ in self.executed]


class FailingCopyCursor(FakeCursor):
    """A cursor whose COPY fails after reading ``fail_after_reads`` chunks."""

    def __init__(self, fail_after_reads: int = 1, respond: Responder | None = None) -> None:
        super().__init__(respond)
        self.fail_after_reads = fail_after_reads

    def copy_expert(self, sql: str, file: Any, size: int = 8192) -> None:
        self.copies.append(sql)
        for _ in range(self.fail_after_reads):
            if not file.read(size):
                break
            self.copy_reads += 1
        raise RuntimeError("server closed the connection unexpectedly")


class FakeConnection:
    """A DB-API connection handing out one ``FakeCursor``; counts commits and rollbacks."""

    def __init__(self, cursor: FakeCursor | None = None) -> None:
        self.cursor_obj = cursor or FakeCursor()
        self.cursor_obj.connection = self
        self.commits = 0
        self.rollbacks = 0
        self.closed = False
        self.events: list[str] = []  # "execute", "commit", "rollback", "close" in order

    def cursor(self) -> FakeCursor:
        return self.cursor_obj

    def commit(self) -> None:
        self.commits += 1
        self.events.append("commit")

    def rollback(self) -> None:
        self.rollbacks += 1
        self.events.append("rollback")

    def close(self) -> None:
        self.closed = True
        self.events.append("close")


def patch_postgres_hook(monkeypatch: Any, conn: FakeConnection) -> list[str]:
    """Make ``PostgresHook.get_conn`` return ``conn``; returns the conn ids asked for."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    asked: list[str] = []

    def get_conn(self: PostgresHook) -> FakeConnection:
        asked.append(self.postgres_conn_id)
        return conn

    monkeypatch.setattr(PostgresHook, "get_conn", get_conn)
    return asked


# ----------------------------------------------------------------------------- connections


def connection_variable(conn_id: str) -> str:
    """The environment variable Airflow reads connection ``conn_id`` from.

    Airflow looks up ``AIRFLOW_CONN_`` + ``conn_id.upper()`` and nothing else: a dash in
    the id stays a dash (``aws-redshift`` is ``AIRFLOW_CONN_AWS-REDSHIFT``).
    """
    return "AIRFLOW_CONN_" + conn_id.upper()


def set_connection(monkeypatch: Any, conn_id: str, conn_type: str, **fields: Any) -> None:
    """Define connection ``conn_id`` of ``conn_type`` (and ``extra``, ``host``, ...) for
    the test, as an environment connection in Airflow's JSON format."""
    document = {"conn_type": conn_type, **fields}
    monkeypatch.setenv(connection_variable(conn_id), json.dumps(document))


def record_connection_lookups(monkeypatch: Any) -> list[str]:
    """The conn ids ``BaseHook.get_connection`` is asked for, in order (still answered
    from the real secrets backends)."""
    from airflow.hooks.base import BaseHook

    asked: list[str] = []
    original = BaseHook.get_connection

    def get_connection(cls: type, conn_id: str) -> Any:
        asked.append(conn_id)
        return original(conn_id)

    monkeypatch.setattr(BaseHook, "get_connection", classmethod(get_connection))
    return asked


def apply_environment(
    monkeypatch: Any,
    environment: dict[str, str],
    conn_ids: Sequence[str] = (WAREHOUSE_CONN_ID, AWS_CONN_ID),
) -> None:
    """Set ``environment`` (``AIRFLOW_CONN_*``/``AIRFLOW_VAR_*``, as built by
    ``tests.stack_support.connection_environment``) for the test.

    A connection of ``conn_ids`` given only under its underscored name (``AIRFLOW_CONN_
    AWS_REDSHIFT``, which Airflow never reads for ``aws-redshift``) is also set under the
    name Airflow does read, so the test reaches the servers it means to and not the
    default AWS endpoint.
    """
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    for conn_id in conn_ids:
        read_as = connection_variable(conn_id)
        underscored = read_as.replace("-", "_")
        if read_as not in environment and underscored in environment:
            monkeypatch.setenv(read_as, environment[underscored])


# ----------------------------------------------------------------------------- S3


class FakePaginator:
    def __init__(self, client: FakeS3Client) -> None:
        self.client = client

    def paginate(self, Bucket: str, Prefix: str = "") -> Iterable[dict]:
        self.client.list_calls.append((Bucket, Prefix))
        if self.client.list_error is not None:
            raise self.client.list_error
        keys = sorted(k for k in self.client.buckets[Bucket] if k.startswith(Prefix))
        size = self.client.page_size
        if not keys:
            # S3 leaves "Contents" out of an empty listing.
            yield {"KeyCount": 0, "IsTruncated": False}
            return
        for start in range(0, len(keys), size):
            page = keys[start : start + size]
            yield {
                "Contents": [{"Key": k, "Size": len(self.client.buckets[Bucket][k])} for k in page],
                "KeyCount": len(page),
                "IsTruncated": start + size < len(keys),
            }


class FakeS3Client:
    """``get_paginator('list_objects_v2')`` in pages of ``page_size``, ``get_object``
    returning botocore's real ``StreamingBody``, ``put_object`` (recorded in ``put_calls``
    and stored), and ``meta.endpoint_url``. Thread-safe for reads."""

    def __init__(
        self,
        buckets: dict[str, dict[str, bytes]],
        page_size: int = 2,
        list_error: Exception | None = None,
        endpoint_url: str = "https://s3.fake.amazonaws.com",
        put_error: Exception | None = None,
    ) -> None:
        self.buckets = buckets
        self.page_size = page_size
        self.list_error = list_error  # raised by every listing, when set
        self.put_error = put_error  # raised by every put_object, when set
        self.put_calls: list[dict[str, Any]] = []
        self.meta = SimpleNamespace(endpoint_url=endpoint_url)
        self.list_calls: list[tuple[str, str]] = []
        self.get_calls: list[str] = []
        self.bodies: list[ClosingBody] = []
        self._lock = threading.Lock()

    def get_paginator(self, name: str) -> FakePaginator:
        assert name == "list_objects_v2", name
        return FakePaginator(self)

    def put_object(self, Bucket: str, Key: str, Body: bytes, **extra: Any) -> dict:
        with self._lock:
            self.put_calls.append({"Bucket": Bucket, "Key": Key, "Body": Body, **extra})
        if self.put_error is not None:
            raise self.put_error
        self.buckets.setdefault(Bucket, {})[Key] = Body
        return {"ETag": '"fake"'}

    def get_object(self, Bucket: str, Key: str) -> dict:
        data = self.buckets[Bucket][Key]
        body = ClosingBody(io.BytesIO(data), len(data))
        with self._lock:
            self.get_calls.append(Key)
            self.bodies.append(body)
        return {"Body": body, "ContentLength": len(data)}


class ClosingBody(StreamingBody):
    """botocore's ``StreamingBody`` remembering whether it was closed."""

    was_closed = False

    def close(self) -> None:
        self.was_closed = True
        super().close()


# ----------------------------------------------------------------------------- records
# Source records in the sample data's shape (docs: sparkify-data-format), for staging tests.


def play_event(**fields: object) -> dict:
    """A NextSong event of 2018-11-01T00:00Z with ``fields`` replaced."""
    record = {
        "artist": "Beyoncé", "auth": "Logged In", "firstName": "Zoë", "gender": "F",
        "itemInSession": 0, "lastName": "O'Hara", "length": 201.5, "level": "free",
        "location": "Łódź, PL", "method": "PUT", "page": "NextSong",
        "registration": 1540000000000.0, "sessionId": 7, "song": "Halo", "status": 200,
        "ts": 1541030400000, "userAgent": '"Mozilla/5.0"', "userId": "42",
    }  # fmt: skip
    record.update(fields)
    return record


def logged_out_event(**fields: object) -> dict:
    record = play_event(
        auth="Logged Out", page="Home", userId="", firstName=None, lastName=None, gender=None,
        registration=None, userAgent=None, artist=None, song=None, length=None,
    )  # fmt: skip
    record.update(fields)
    return record


def song_record(**fields: object) -> dict:
    record = {
        "num_songs": 1, "artist_id": "ARJIE2Y1187B994AB7", "artist_latitude": None,
        "artist_longitude": None, "artist_location": "", "artist_name": "Line Renaud",
        "song_id": "SOUPIRU12A6D4FA1E1", "title": "Der Kleine Dompfaff", "duration": 152.92036,
        "year": 0,
    }  # fmt: skip
    record.update(fields)
    return record


def without(record: dict, key: str) -> dict:
    return {k: v for k, v in record.items() if k != key}


# ----------------------------------------------------------------------------- COPY text


def _unescape(field_text: str) -> str:
    out, i = [], 0
    escapes = {"t": "\t", "n": "\n", "r": "\r", "\\": "\\"}
    while i < len(field_text):
        char = field_text[i]
        if char == "\\":
            nxt = field_text[i + 1]
            if nxt not in escapes:
                raise AssertionError(f"unexpected escape \\{nxt} in {field_text!r}")
            out.append(escapes[nxt])
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


def parse_copy_text(data: bytes, ncolumns: int) -> list[tuple[str | None, ...]]:
    """PostgreSQL's COPY text format (tab-delimited, ``\\N`` NULL) back into tuples."""
    text = data.decode("utf-8")
    if not text:
        return []
    assert text.endswith("\n"), "COPY text must end with a newline"
    rows = []
    for line in text[:-1].split("\n"):
        fields = line.split("\t")
        assert len(fields) == ncolumns, f"{len(fields)} fields, expected {ncolumns}: {line!r}"
        rows.append(tuple(None if f == "\\N" else _unescape(f) for f in fields))
    return rows


# ----------------------------------------------------------------------------- COPY binary


def _as_text(value: object) -> str | None:
    """A decoded binary COPY field as COPY's text format spells it."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return str(value)


def parse_copy_binary(data: bytes, info: Sequence[tuple]) -> list[tuple[str | None, ...]]:
    """PostgreSQL's COPY binary format back into tuples of text (``None`` for NULL), for
    a table of ``info`` (information_schema rows: name, type, ...)."""
    rows = decode_copy_binary(data, [column[1] for column in info])
    return [tuple(_as_text(value) for value in row) for row in rows]


def parse_copy(data: bytes, info: Sequence[tuple]) -> list[tuple[str | None, ...]]:
    """Rows of a COPY in either format (text, or binary), each field as the text format
    spells it: the tests of the loader read its rows whichever format it sends."""
    if data.startswith(COPY_BINARY_SIGNATURE):
        return parse_copy_binary(data, info)
    return parse_copy_text(data, len(info))


# ----------------------------------------------------------------------------- staging tasks

STAGING_BUCKET = "sparkify-test"


def events_staging_operator(**kwargs: Any) -> Any:
    """``stage_events`` as the DAG declares it (daily keys of the run's interval), on the
    fake bucket and the connections ``aws_conn``/``warehouse``; ``kwargs`` override."""
    from astro.files import File
    from astro.table import Metadata, Table

    from operators.stage_redshift import StageToRedshiftOperator
    from sparkify.config import LOG_KEY_TEMPLATE

    arguments = {
        "task_id": "stage_events",
        "input_file": File(f"s3://{STAGING_BUCKET}/log_data/", conn_id="aws_conn"),
        "output_table": Table(
            name="staging_events", conn_id="warehouse", metadata=Metadata(schema="public")
        ),
        "key_template": LOG_KEY_TEMPLATE,
        **kwargs,
    }
    return StageToRedshiftOperator(**arguments)


def songs_staging_operator(**kwargs: Any) -> Any:
    """``stage_songs``: the whole song prefix into ``staging_songs``; ``kwargs`` override."""
    from astro.files import File
    from astro.table import Metadata, Table

    return events_staging_operator(
        input_file=File(f"s3://{STAGING_BUCKET}/song_data/", conn_id="aws_conn"),
        output_table=Table(
            name="staging_songs", conn_id="warehouse", metadata=Metadata(schema="public")
        ),
        key_template=None,
        **kwargs,
    )
