"""Stage JSON objects from S3 into a PostgreSQL table: concurrent GETs, one COPY.

The staging path for PostgreSQL. Objects are fetched by a bounded pool of threads and
parsed line by line (a file holds one JSON object per line; a song file holds one), each
record is encoded for the target table's columns (``sparkify.json_encode``, which also
applies the table's staging rules and counts its plays), and the rows stream into a
single ``COPY ... FROM STDIN`` through a bounded queue, so memory does not grow with the
input.
"""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from sparkify.json_encode import Column, RowEncoder, encode_object
from sparkify.staging_rejects import RejectCollector
from sparkify.staging_rules import PlayTally, TableRules, hourly_plays

# Bytes of COPY text handed to the database at a time, and how many such chunks may wait.
CHUNK_BYTES = 1 << 20
QUEUE_CHUNKS = 16


@dataclass(frozen=True)
class LoadResult:
    """What a load staged: objects read, rows copied, and per object the distinct plays
    per UTC hour (hour number since the epoch -> plays) when the rules count them."""

    objects: int
    rows: int
    plays: dict[str, dict[int, int]] = field(default_factory=dict)


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
