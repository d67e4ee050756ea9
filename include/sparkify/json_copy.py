"""Stage JSON objects from S3 into a PostgreSQL table: concurrent GETs, one COPY.

The staging path for PostgreSQL. Objects are fetched by a bounded pool of threads and
parsed line by line (a file holds one JSON object per line; a song file holds one), each
record is checked against the target table's columns, and the rows stream into a single
``COPY ... FROM STDIN`` through a bounded queue, so memory does not grow with the input.

Column ``c`` takes the JSON key whose lower-case form is ``c`` (``userId`` -> ``userid``),
the mapping Redshift's ``FORMAT AS JSON 'auto ignorecase'`` uses, so both targets stage
the same rows.
"""

from __future__ import annotations

import io
import json
import math
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from sparkify.sql import read_sql

INTEGER_BITS = {"smallint": 16, "integer": 32, "bigint": 64}
INTEGER_TYPES = set(INTEGER_BITS)
FLOAT_TYPES = {"double precision", "real", "numeric"}
TEXT_TYPES = {"character varying", "text", "character"}

try:  # orjson parses several times faster; the json module is the fallback
    from orjson import loads as _loads
except ImportError:  # pragma: no cover - orjson is in the lock
    from json import loads as _loads

# Bytes of COPY text handed to the database at a time, and how many such chunks may wait.
CHUNK_BYTES = 1 << 20
QUEUE_CHUNKS = 16


class StagingError(ValueError):
    """A record could not be staged; the message names the object and line."""


class RecordError(StagingError):
    """One bad record: ``where`` (object and line) and ``reason``, kept apart for rejects."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


class TooManyRejectsError(StagingError):
    """More bad records than the load tolerates; the message names the first ones."""


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str
    nullable: bool
    max_length: int | None = None


@dataclass(frozen=True)
class Reject:
    """A record that was not staged, and why."""

    source_key: str
    line_number: int
    reason: str
    raw_line: str


# A rejected line is kept whole up to this many characters (Redshift's VARCHAR maximum).
REJECT_LINE_CHARS = 65535


class RejectCollector:
    """Collects bad records from worker threads; raises once there are too many.

    :param max_rejects: how many bad records the load tolerates (like Redshift's MAXERROR);
        one more raises ``TooManyRejectsError`` naming the first offenders.
    """

    def __init__(self, max_rejects: int) -> None:
        if max_rejects < 0:
            raise ValueError("max_rejects must be >= 0")
        self.max_rejects = max_rejects
        self._rejects: list[Reject] = []
        self._lock = threading.Lock()

    def add(self, key: str, line_number: int, error: RecordError, line: bytes | str) -> None:
        raw = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
        reject = Reject(key, line_number, error.reason, raw[:REJECT_LINE_CHARS])
        with self._lock:
            self._rejects.append(reject)
            too_many = len(self._rejects) > self.max_rejects
        if too_many:
            offenders = "; ".join(
                f"{r.source_key} line {r.line_number}: {r.reason}" for r in self.rejects[:5]
            )
            raise TooManyRejectsError(
                f"more than {self.max_rejects} bad record(s) (max_rejects); first: {offenders}"
            )

    @property
    def rejects(self) -> list[Reject]:
        with self._lock:
            return sorted(self._rejects, key=lambda r: (r.source_key, r.line_number))


@dataclass(frozen=True)
class LoadResult:
    objects: int
    rows: int


def table_columns(cursor, schema: str, table: str) -> list[Column]:
    """The table's columns in order, from the information schema."""
    cursor.execute(read_sql("table_columns"), (schema, table))
    columns = [Column(*row) for row in cursor]
    if not columns:
        raise StagingError(f"table {schema}.{table} does not exist (run create_tables first)")
    unknown = [c for c in columns if c.data_type not in INTEGER_TYPES | FLOAT_TYPES | TEXT_TYPES]
    if unknown:
        raise StagingError(f"{schema}.{table}: unsupported staging column types {unknown}")
    return columns


def _escape(text: str) -> str:
    # COPY's text format: backslash, tab, newline and carriage return must be escaped.
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = (
            text.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return text


def _converter(column: Column) -> Callable[[object], str]:
    """A function turning a JSON value into the column's COPY text, or raising TypeError.

    Each starts with a fast path for the type the column expects (the common case).
    """
    if column.data_type in INTEGER_TYPES:
        bits = INTEGER_BITS[column.data_type]
        low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

        def to_integer(value: object) -> str:
            if type(value) is int and low <= value <= high:
                return str(value)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{column.name} must be an integer, got {value!r}")
            if isinstance(value, float) and not value.is_integer():
                raise TypeError(f"{column.name} must be an integer, got {value!r}")
            if not low <= value <= high:
                raise TypeError(f"{column.name} {value!r} is out of the {column.data_type} range")
            return str(int(value))

        return to_integer
    if column.data_type in FLOAT_TYPES:

        def to_float(value: object) -> str:
            if type(value) is float and math.isfinite(value):
                return repr(value)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{column.name} must be a number, got {value!r}")
            if isinstance(value, float):
                raise TypeError(f"{column.name} must be a finite number, got {value!r}")
            return str(value)

        return to_float

    max_length = column.max_length

    def to_text(value: object) -> str:
        if type(value) is str:
            text = value
        elif isinstance(value, dict | list):
            text = json.dumps(value, ensure_ascii=False)
        elif isinstance(value, bool):
            text = "true" if value else "false"
        else:
            text = str(value)
        if max_length is not None and len(text) > max_length:
            raise TypeError(
                f"{column.name} is {len(text):,} characters, "
                f"longer than the column's {max_length:,}"
            )
        return _escape(text)

    return to_text


# A staging column of this name records which object each row came from (it is not read
# from the JSON): incremental loads replace the rows of changed objects by it.
SOURCE_KEY_COLUMN = "source_key"


class RowEncoder:
    """Turns one JSON line into one line of COPY text for the given columns.

    Lines of one source share their keys' spelling and order, so the mapping from JSON
    keys to columns is worked out once per distinct key tuple and reused.
    """

    def __init__(self, columns: Sequence[Column]) -> None:
        self.columns = list(columns)
        self._converters = [(c.name, c.nullable, _converter(c)) for c in self.columns]
        self._plans: dict[tuple[str, ...], list[tuple[str | None, str, bool, Callable]]] = {}

    def _plan(self, keys: tuple[str, ...]) -> list[tuple[str | None, str, bool, Callable]]:
        """Per column: the JSON key feeding it (None: absent), its name, nullability, converter."""
        by_lower = {key.lower(): key for key in keys}
        plan = [
            (SOURCE_KEY_COLUMN if name == SOURCE_KEY_COLUMN else by_lower.get(name), name,
             nullable, convert)
            for name, nullable, convert in self._converters
        ]  # fmt: skip
        if len(self._plans) < 1024:  # bounded, whatever the input
            self._plans[keys] = plan
        return plan

    def encode(self, line: bytes | str, where: str, source_key: str | None = None) -> str:
        try:
            record = _loads(line)
        except ValueError as exc:
            raise RecordError(where, f"malformed JSON ({exc})") from None
        if type(record) is not dict:
            raise RecordError(where, f"expected a JSON object, got {type(record).__name__}")
        keys = tuple(record)
        plan = self._plans.get(keys) or self._plan(keys)
        fields = []
        for json_key, name, nullable, convert in plan:
            if json_key is None:
                value = None
            elif json_key is SOURCE_KEY_COLUMN:
                value = source_key
            else:
                value = record[json_key]
            if value is None:
                if not nullable:
                    raise RecordError(where, f"required field {name!r} is missing or null")
                fields.append("\\N")
                continue
            try:
                fields.append(convert(value))
            except TypeError as exc:
                raise RecordError(where, str(exc)) from None
        return "\t".join(fields) + "\n"


def encode_object(
    key: str,
    lines: Iterable[bytes],
    encoder: RowEncoder,
    rejects: RejectCollector | None = None,
) -> Iterator[str]:
    """COPY text lines for one object's JSON lines; blank lines are skipped.

    A bad record raises ``RecordError``, or, given ``rejects``, is set aside there.
    """
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            # ``where`` is only spelled out for a bad record: most lines never need it.
            yield encoder.encode(line, "", key)
        except RecordError as error:
            error = RecordError(f"{key} line {number}", error.reason)
            if rejects is None:
                raise error from None
            rejects.add(key, number, error, line)


class _QueueReader(io.RawIOBase):
    """A file-like view of a queue of byte chunks, ended by ``None``: COPY's input."""

    def __init__(self, chunks: queue.Queue) -> None:
        self._chunks = chunks
        self._buffer = b""
        self._done = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while not self._done and (size < 0 or len(self._buffer) < size):
            chunk = self._chunks.get()
            if chunk is None:
                self._done = True
            else:
                self._buffer += chunk
        if size < 0:
            size = len(self._buffer)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


def copy_objects(
    cursor,
    table_sql: str,
    columns: Sequence[Column],
    keys: Sequence[str],
    read_lines: Callable[[str], Iterable[bytes]],
    max_workers: int = 32,
    rejects: RejectCollector | None = None,
) -> LoadResult:
    """COPY every JSON line of ``keys`` into ``table_sql``; returns the counts.

    ``read_lines(key)`` fetches one object and yields its lines (it runs in worker
    threads). Without ``rejects`` the first bad record stops the load with a
    ``StagingError``; with it, bad records are collected until there are more than it
    tolerates. When the load stops, the caller's transaction rolls back, so nothing
    half-loaded is left.
    """
    encoder = RowEncoder(columns)
    chunks: queue.Queue = queue.Queue(maxsize=QUEUE_CHUNKS)
    rows = 0
    rows_lock = threading.Lock()
    failure: list[BaseException] = []
    stop = threading.Event()

    def stage(key: str) -> None:
        nonlocal rows
        if stop.is_set():
            return
        buffer: list[str] = []
        size = count = 0
        for text in encode_object(key, read_lines(key), encoder, rejects):
            buffer.append(text)
            size += len(text)
            count += 1
            if size >= CHUNK_BYTES:
                chunks.put("".join(buffer).encode())
                buffer, size = [], 0
                if stop.is_set():
                    return
        if buffer:
            chunks.put("".join(buffer).encode())
        with rows_lock:
            rows += count

    def produce() -> None:
        try:
            with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(keys)))) as pool:
                window = max_workers * 4
                pending: list[Future] = []
                for key in keys:
                    pending.append(pool.submit(stage, key))
                    if len(pending) >= window:
                        pending.pop(0).result()
                for future in pending:
                    future.result()
        except BaseException as exc:
            failure.append(exc)
            stop.set()
        finally:
            chunks.put(None)

    producer = threading.Thread(target=produce, name="json-copy-producer", daemon=True)
    producer.start()
    reader = _QueueReader(chunks)
    column_sql = ", ".join(f'"{c.name}"' for c in columns)
    try:
        cursor.copy_expert(f"COPY {table_sql} ({column_sql}) FROM STDIN", reader, size=CHUNK_BYTES)
    except BaseException:
        stop.set()
        # Drain so that blocked workers can finish, then let the original error surface.
        while producer.is_alive():
            try:
                chunks.get(timeout=0.1)
            except queue.Empty:
                continue
        raise
    finally:
        producer.join()
    if failure:
        raise failure[0]
    return LoadResult(objects=len(keys), rows=rows)
