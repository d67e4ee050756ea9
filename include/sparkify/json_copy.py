"""Stage JSON objects from S3 into a PostgreSQL table: concurrent GETs, one binary COPY.

The staging path for PostgreSQL. Objects are fetched by a bounded pool of threads as
blocks of whole lines (a file holds one JSON object per line; a song file holds one),
gathered into chunks of at least ``CHUNK_LINES`` lines.
Each chunk is decoded, checked and formatted as rows of COPY's binary format by
``sparkify.json_batch`` (which applies the table's staging rules and collects its plays),
in this process or, when asked (``processes``), also in child processes
(``sparkify.copy_worker``) that take chunks whenever they have room. The rows stream into a
single ``COPY ... FROM STDIN (FORMAT BINARY)`` through a bounded queue, so memory does
not grow with the input. The cursor may be psycopg2's (``copy_expert``) or psycopg 3's
(``copy``): the bytes are the same.
"""

from __future__ import annotations

import io
import itertools
import os
import queue
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sparkify.json_batch import FAST_LINES, Chunk, ChunkEncoder, Plays, hourly_counts
from sparkify.json_encode import Column
from sparkify.staging_rejects import RecordError, RejectCollector
from sparkify.staging_rules import TableRules

# Bytes of COPY data handed to the database at a time, and how many pieces may wait.
CHUNK_BYTES = 1 << 20
QUEUE_CHUNKS = 16
# Lines encoded at least at a time (a chunk is whole blocks of the reader's: ~128 KB).
CHUNK_LINES = 200
# Objects read at once past their first chunk, per encoding process (a big object's
# plays are held until its end).
BIG_OBJECTS = 2
# Child processes start once this many bytes of big chunks have come (a smaller load
# is over before one would have imported its modules).
WORKER_START_BYTES = 8 << 20
SWITCH_INTERVAL = 0.0005
# Chunks a child process may hold at once (it never waits for the next one).
WORKER_DEPTH = 3
_BINARY_SIGNATURE = b"PGCOPY\n\xff\r\n\0" + b"\0\0\0\0" + b"\0\0\0\0"
_BINARY_TRAILER = b"\xff\xff"


@dataclass(frozen=True)
class LoadResult:
    """What a load staged: objects read, rows copied, and per object the distinct plays
    per UTC hour (hour number since the epoch -> plays) when the rules count them."""

    objects: int
    rows: int
    plays: dict[str, dict[int, int]] = field(default_factory=dict)


def default_processes() -> int:
    """Child processes a load uses by default: ``SPARKIFY_COPY_PROCESSES``, else none.

    A child pays only where a core is free for it: on the shared 2-core machine of
    dev/bench/README.md it made loads slower (the chunks' round trips cost more than
    the encoding they moved), so it is opt-in.
    """
    configured = os.environ.get("SPARKIFY_COPY_PROCESSES", "").strip()
    return max(0, int(configured)) if configured else 0


def copy_objects(
    cursor: Any,
    table_sql: str,
    columns: Sequence[Column],
    keys: Sequence[str],
    read_blocks: Callable[[str], Iterable[bytes]],
    max_workers: int = 32,
    rejects: RejectCollector | None = None,
    rules: TableRules | None = None,
    constants: Mapping[str, object] | None = None,
    processes: int | None = None,
) -> LoadResult:
    """COPY every JSON line of ``keys`` into ``table_sql``; returns the counts.

    Without ``rejects`` the first bad record stops the load with a ``StagingError``; with
    it, bad records are collected until there are more than it tolerates. When the load
    stops, the caller's transaction rolls back, so nothing half-loaded is left.

    :param cursor: a psycopg2 or psycopg 3 cursor inside the caller's transaction.
    :param table_sql: the validated, quoted target table.
    :param columns: its columns (``staging_tables.table_columns``).
    :param keys: the objects to load.
    :param read_blocks: fetches one object and yields it as blocks of whole lines, each
        one or more lines joined by ``\n`` (``s3_objects.line_blocks``; a single line is
        a block); runs in worker threads.
    :param max_workers: objects fetched at once.
    :param rejects: where bad records go (see above).
    :param rules: the table's staging rules; when they count plays, the result has them.
    :param constants: columns not read from the JSON that hold one value on every row
        (e.g. ``run_id``, ``staged_at``); ``source_key`` holds each row's object.
    :param processes: child processes encoding chunks besides this one (None:
        ``default_processes()``, none unless ``SPARKIFY_COPY_PROCESSES`` says).
    """
    encoder = ChunkEncoder(columns, rules, constants)
    count = default_processes() if processes is None else processes
    spawn = _WorkerSpawn(count, list(columns), rules, dict(constants or {}))
    load = _Load(encoder, keys, read_blocks, max_workers, rejects, spawn)
    column_sql = ", ".join(f'"{c.name}"' for c in encoder.columns)
    statement = f"COPY {table_sql} ({column_sql}) FROM STDIN (FORMAT BINARY)"
    # With workers, the thread reading their answers gets the GIL back within
    # SWITCH_INTERVAL of its wake-up instead of Python's 5 ms, for this load only.
    interval = sys.getswitchinterval()
    if count:
        sys.setswitchinterval(min(interval, SWITCH_INTERVAL))
    load.start()
    try:
        _run_copy(cursor, statement, load.pump())
    finally:
        load.finish()
        sys.setswitchinterval(interval)
    return LoadResult(objects=len(keys), rows=load.rows, plays=load.plays)


@dataclass(frozen=True)
class _WorkerSpawn:
    """The child processes a load may start, and what they encode for."""

    count: int
    columns: list[Column]
    rules: TableRules | None
    constants: dict[str, object]

    def start(self) -> list:
        from sparkify.copy_worker import CopyWorker

        return [CopyWorker(self.columns, self.rules, self.constants) for _ in range(self.count)]


@dataclass
class _ObjectState:
    """An object's chunks: numbered as they arrive, emitted in that order."""

    assigned: int = 0
    emitted: int = 0
    held: dict[int, tuple[Chunk, bool]] = field(default_factory=dict)


class _Load:
    """One load's threads and state.

    Fetching threads read objects and queue chunks of their lines (``inbox``, bounded by
    ``slots``); the thread running the COPY takes them (``pump``) and encodes each itself
    or hands it to a child process, whose answers come back through the same inbox. An
    object's chunks all go the same way, so its rows stay in order.
    """

    def __init__(
        self,
        encoder: ChunkEncoder,
        keys: Sequence[str],
        read_blocks: Callable[[str], Iterable[bytes]],
        max_workers: int,
        rejects: RejectCollector | None,
        spawn: _WorkerSpawn,
    ) -> None:
        self.encoder, self.keys, self.read_blocks = encoder, keys, read_blocks
        self.max_workers, self.rejects, self.spawn = max_workers, rejects, spawn
        self.workers: list = []  # started once the load proves big enough for them
        self._routed = 0  # bytes of lines routed so far
        # Workers' answers (priority 0) come before fetched chunks (1): a worker waits
        # on nothing but them.
        self.inbox: queue.Queue = queue.PriorityQueue()
        self.slots = threading.BoundedSemaphore(QUEUE_CHUNKS * 2)
        self.big = threading.BoundedSemaphore(BIG_OBJECTS * (1 + spawn.count))
        self.stop = threading.Event()
        self.failure: list[BaseException] = []
        self.rows = 0
        self.plays: dict[str, dict[int, int]] = {}
        self._tallies: dict[str, Plays] = {}
        self._objects: dict[str, _ObjectState] = {}
        self._in_flight = 0  # chunks sent to workers, their answers not taken yet
        self._order = itertools.count()  # the inbox's FIFO within a priority
        self._producer: threading.Thread | None = None

    # ------------------------------------------------------------------ fetching side

    def start(self) -> None:
        self._producer = threading.Thread(
            target=self._produce, name="json-copy-producer", daemon=True
        )
        self._producer.start()

    def _put(self, item: tuple) -> bool:
        while not self.slots.acquire(timeout=0.1):
            if self.stop.is_set():
                return False
        self.inbox.put((1, next(self._order), item))
        return True

    def _fetch(self, key: str) -> None:
        if self.stop.is_set():
            return
        first_line = 1
        blocks: list[bytes] = []
        lines = 0  # in blocks
        held = False
        try:
            for block in self.read_blocks(key):
                blocks.append(block)
                lines += block.count(b"\n") + 1
                if lines < CHUNK_LINES:
                    continue
                chunk = blocks[0] if len(blocks) == 1 else b"\n".join(blocks)
                if not self._put(("chunk", key, first_line, chunk, lines, False)):
                    return
                first_line += lines
                blocks, lines = [], 0
                if not held:  # a big object: few at a time, its plays are held to its end
                    while not self.big.acquire(timeout=0.1):
                        if self.stop.is_set():
                            return
                    held = True
            self._put(("chunk", key, first_line, b"\n".join(blocks), lines, True))
        finally:
            if held:
                self.big.release()

    def _produce(self) -> None:
        try:
            count = max(1, min(self.max_workers, len(self.keys)))
            with ThreadPoolExecutor(max_workers=count, thread_name_prefix="json-copy-get") as pool:
                window = self.max_workers * 4
                pending: list[Future] = []
                for key in self.keys:
                    pending.append(pool.submit(self._fetch, key))
                    if len(pending) >= window:
                        pending.pop(0).result()
                for future in pending:
                    future.result()
        except BaseException as exc:
            self.failure.append(exc)
            self.stop.set()
        finally:
            self.inbox.put((1, next(self._order), ("fetched",)))

    # ------------------------------------------------------------------ COPY side

    def pump(self) -> Iterator[bytes]:
        """COPY's binary data: the signature, every row, the trailer."""
        yield _BINARY_SIGNATURE
        fetched = False
        while not (fetched and not self._in_flight):
            _, _, item = self.inbox.get()
            kind = item[0]
            if kind == "fetched":
                fetched = True
                if self.failure:
                    raise self.failure[0]
            elif kind == "chunk":
                yield from self._route(*item[1:])
            else:  # "encoded": a worker's answer
                _, key, number, last, future = item
                self._in_flight -= 1
                yield from self._deliver(key, number, last, future.result())
        yield _BINARY_TRAILER

    def _route(self, key: str, first_line: int, data: bytes, lines: int, last: bool) -> list[bytes]:
        """Hand a chunk to a worker with room for it, or encode it here."""
        self.slots.release()
        state = self._objects.get(key)
        if state is None:
            state = self._objects[key] = _ObjectState()
        number = state.assigned
        state.assigned += 1
        if self.spawn.count and lines >= FAST_LINES:
            self._routed += len(data)
            if not self.workers and self._routed >= WORKER_START_BYTES:
                self.workers = self.spawn.start()
        if lines >= FAST_LINES and self._in_flight < WORKER_DEPTH * len(self.workers):
            worker = min(self.workers, key=lambda w: w.outstanding)
            self._in_flight += 1
            future = worker.submit(key, first_line, data)
            future.add_done_callback(
                lambda done: self.inbox.put(
                    (0, next(self._order), ("encoded", key, number, last, done))
                )
            )
            return []
        chunk = self.encoder.encode(key, first_line, None, data)
        return self._deliver(key, number, last, chunk)

    def _deliver(self, key: str, number: int, last: bool, chunk: Chunk) -> list[bytes]:
        """The data of the object's chunks that are now next in order (rows stay in order)."""
        state = self._objects[key]
        state.held[number] = (chunk, last)
        out = []
        while state.emitted in state.held:
            chunk, last = state.held.pop(state.emitted)
            state.emitted += 1
            data = self._take(key, chunk, last)
            if data:
                out.append(data)
            if last:
                del self._objects[key]
        return out

    def _take(self, key: str, chunk: Chunk, last: bool) -> bytes:
        for number, reason, line in chunk.rejects:
            error = RecordError(f"{key} line {number}", reason)
            if self.rejects is None:
                raise error
            self.rejects.add(key, number, error, line)
        self.rows += chunk.rows
        if self.encoder.counts_plays:
            tally = self._tallies.get(key)
            if tally is None:
                tally = self._tallies[key] = set()
            tally |= chunk.plays
            if last:
                self.plays[key] = hourly_counts(self._tallies.pop(key))
        return chunk.data

    def finish(self) -> None:
        """Stop the fetching threads (after a failure) and the workers, and wait for them."""
        self.stop.set()
        if self._producer is not None:
            self._producer.join()
        for worker in self.workers:
            worker.close()


def _run_copy(cursor: Any, statement: str, data: Iterator[bytes]) -> None:
    """Stream ``data`` into ``statement`` on either driver."""
    if hasattr(cursor, "copy_expert"):  # psycopg2 reads a file
        reader = _IteratorReader(data)
        try:
            cursor.copy_expert(statement, reader, size=CHUNK_BYTES)
        except Exception:
            if reader.failure is None:
                raise
        if reader.failure is not None:
            # psycopg2 would turn an error of read() into a QueryCanceled naming it; the
            # load's own error (a bad record, too many rejects, a failed GET) is raised.
            raise reader.failure
        return
    with cursor.copy(statement) as copy:  # psycopg 3
        pending = bytearray()
        for piece in data:
            pending += piece
            if len(pending) >= CHUNK_BYTES:
                copy.write(pending)
                pending = bytearray()
        if pending:
            copy.write(pending)


class _IteratorReader(io.RawIOBase):
    """A file-like view of an iterator of byte strings: psycopg2's COPY input."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._pieces = pieces
        self._buffer = bytearray()
        self._done = False
        self.failure: BaseException | None = None  # what the iterator raised

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while not self._done and (size < 0 or len(self._buffer) < size):
            try:
                piece = next(self._pieces, None)
            except BaseException as exc:  # ends the COPY; _run_copy raises it after
                self.failure, self._done = exc, True
                self._buffer.clear()
                return b""
            if piece is None:
                self._done = True
            else:
                self._buffer += piece
        if size < 0:
            size = len(self._buffer)
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data
