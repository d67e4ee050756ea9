"""Stage JSON objects from S3 into a PostgreSQL table: concurrent GETs, one COPY.

The staging path for PostgreSQL. Objects are fetched by a bounded pool of threads and
parsed line by line (a file holds one JSON object per line; a song file holds one), each
record is checked against the target table's columns, and the rows stream into a single
``COPY ... FROM STDIN`` through a bounded queue, so memory does not grow with the input.

Column ``c`` takes the JSON key whose lower-case form is ``c`` (``userId`` -> ``userid``),
the mapping Redshift's ``FORMAT AS JSON 'auto ignorecase'`` uses, and text lengths are
measured as Redshift measures VARCHAR, in bytes of UTF-8, so both targets stage the same
rows. The table's staging rules (``sparkify.staging_rules``) are applied to each record,
and the plays they select are counted per object and UTC hour as the records enter.
"""

from __future__ import annotations

import io
import json
import math
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from sparkify.sql import read_sql, render_tables
from sparkify.staging_rules import (  # noqa: F401 - re-exported: the loader's error types
    REJECT_LINE_CHARS,
    PlayTally,
    RecordError,
    Reject,
    RejectCollector,
    StagingError,
    TableRules,
    TooManyRejectsError,
    hourly_plays,
    nul_reason,
    record_check,
)

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


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str
    nullable: bool
    max_length: int | None = None


@dataclass(frozen=True)
class LoadResult:
    """What a load staged: objects read, rows copied, and per object the distinct plays
    per UTC hour (hour number since the epoch -> plays) when the rules count them."""

    objects: int
    rows: int
    plays: dict[str, dict[int, int]] = field(default_factory=dict)


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


def ensure_source_key(cursor, schema: str, table: str, columns: list[Column]) -> list[Column]:
    """``columns``, once ``source_key`` is added to a table the DDL declares with it.

    A table created before the column was declared lacks it (CREATE TABLE IF NOT EXISTS
    keeps an existing table as it is); the load adds it inside its transaction.

    :param cursor: a cursor inside the load's transaction.
    :param schema: the table's schema.
    :param table: the staging table.
    :param columns: its columns as ``table_columns`` read them.
    """
    from sparkify import ddl

    if any(c.name == SOURCE_KEY_COLUMN for c in columns):
        return columns
    try:
        declared = ddl.table_columns(table)
    except KeyError:
        return columns
    if SOURCE_KEY_COLUMN not in declared:
        return columns
    statement = render_tables(read_sql("staging_add_source_key"), {"staging": (schema, table)})
    cursor.execute(statement)
    return [*columns, Column(SOURCE_KEY_COLUMN, "character varying", True, 1024)]


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
    # Below this many characters a text fits whatever it holds (UTF-8 takes at most 4
    # bytes per character), so only longer non-ASCII texts are encoded to be measured.
    sure_fit = (max_length or 0) // 4

    def to_text(value: object) -> str:
        if type(value) is str:
            text = value
        elif isinstance(value, dict | list):
            text = json.dumps(value, ensure_ascii=False)
        elif isinstance(value, bool):
            text = "true" if value else "false"
        else:
            text = str(value)
        if max_length is not None and len(text) > sure_fit:
            # Redshift's VARCHAR(n) holds n bytes: measure as it does, on both targets.
            size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
            if size > max_length:
                raise TypeError(
                    f"{column.name} is {size:,} bytes of UTF-8, "
                    f"longer than the column's {max_length:,}"
                )
        return _escape(text)

    return to_text


# A staging column of this name records which object each row came from (it is not read
# from the JSON): incremental loads replace the rows of changed objects by it.
SOURCE_KEY_COLUMN = "source_key"
NULL_TEXT = "\\N"  # COPY text's NULL


class RowEncoder:
    """Turns one JSON line into one line of COPY text for the given columns.

    Lines of one source share their keys' spelling and order, so the mapping from JSON
    keys to columns is worked out once per distinct key tuple and reused.

    :param columns: the target table's columns, in COPY order.
    :param rules: the table's staging rules (checked on each record, and its plays
        counted), or None for types only. A NUL character is refused in any text either way.
    """

    def __init__(self, columns: Sequence[Column], rules: TableRules | None = None) -> None:
        self.columns = list(columns)
        self._converters = [(c.name, c.nullable, _converter(c)) for c in self.columns]
        self._plans: dict[tuple[str, ...], list[tuple[str | None, str, bool, Callable]]] = {}
        names = [c.name for c in self.columns]
        self._text = [(n, c.name) for n, c in enumerate(self.columns) if c.data_type in TEXT_TYPES]
        self._check = record_check(rules, names, NULL_TEXT) if rules else None
        self.counts_plays = rules is not None and rules.plays is not None

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

    def encode(
        self,
        line: bytes | str,
        where: str,
        source_key: str | None = None,
        plays: PlayTally | None = None,
    ) -> str:
        """One JSON line as one line of COPY text, or ``RecordError`` saying why not.

        :param line: the JSON text of one record.
        :param where: the record's object and line, for the error.
        :param source_key: what the ``source_key`` column (if any) holds.
        :param plays: the object's plays so far; an accepted record the rules count is
            added to it (see ``staging_rules.record_check``).
        """
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
        text = "\t".join(fields) + "\n"
        # One search for a single character (memchr) covers every field at once.
        if "\x00" in text:
            name = next(name for at, name in self._text if "\x00" in fields[at])
            raise RecordError(where, nul_reason(name))
        if self._check is not None:
            reason = self._check(fields, plays)
            if reason is not None:
                raise RecordError(where, reason)
        return text


def encode_object(
    key: str,
    lines: Iterable[bytes],
    encoder: RowEncoder,
    rejects: RejectCollector | None = None,
    plays: PlayTally | None = None,
) -> Iterator[str]:
    """COPY text lines for one object's JSON lines; blank lines are skipped.

    :param key: the object's key (``source_key``, and where a bad record is).
    :param lines: its lines.
    :param encoder: the table's encoder.
    :param rejects: where bad records are set aside; without it the first one raises
        ``RecordError``.
    :param plays: the object's plays, collected as records are accepted.
    """
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            # ``where`` is only spelled out for a bad record: most lines never need it.
            yield encoder.encode(line, "", key, plays)
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
    rules: TableRules | None = None,
) -> LoadResult:
    """COPY every JSON line of ``keys`` into ``table_sql``; returns the counts.

    Without ``rejects`` the first bad record stops the load with a ``StagingError``; with
    it, bad records are collected until there are more than it tolerates. When the load
    stops, the caller's transaction rolls back, so nothing half-loaded is left.

    :param cursor: a psycopg2 cursor inside the caller's transaction.
    :param table_sql: the validated, quoted target table.
    :param columns: its columns (``table_columns``).
    :param keys: the objects to load.
    :param read_lines: fetches one object and yields its lines (runs in worker threads).
    :param max_workers: objects fetched and encoded at once.
    :param rejects: where bad records go (see above).
    :param rules: the table's staging rules; when they count plays, the result has them.
    """
    encoder = RowEncoder(columns, rules)
    chunks: queue.Queue = queue.Queue(maxsize=QUEUE_CHUNKS)
    rows = 0
    plays: dict[str, dict[int, int]] = {}
    rows_lock = threading.Lock()
    failure: list[BaseException] = []
    stop = threading.Event()

    def stage(key: str) -> None:
        nonlocal rows
        if stop.is_set():
            return
        buffer: list[str] = []
        size = count = 0
        tally: PlayTally | None = {} if encoder.counts_plays else None
        for text in encode_object(key, read_lines(key), encoder, rejects, tally):
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
        hourly = None if tally is None else hourly_plays(tally)
        with rows_lock:
            rows += count
            if hourly is not None:
                plays[key] = hourly

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
    return LoadResult(objects=len(keys), rows=rows, plays=plays)
