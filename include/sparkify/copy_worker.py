"""A second process that encodes chunks of JSON lines for ``json_copy``.

Decoding and checking JSON is CPU work under Python's GIL: on a machine with more than
one core, a child process encodes part of the chunks (``json_batch.ChunkEncoder``) while
the loading process fetches objects, encodes the rest and feeds the COPY. The child is a
fresh interpreter (``python -m sparkify.copy_worker``: none of Airflow is imported, and
nothing of the parent's memory is shared or copied) speaking length-prefixed pickles on
its stdin and stdout: first the table (columns, rules, constants), then per chunk
``(key, first line, data)`` in and ``json_batch.Chunk`` (or an error's text) out, in order.
Closing its stdin ends it; it reports its peak RSS last.
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import threading
from collections import deque
from concurrent.futures import Future
from pathlib import Path
from typing import Any, BinaryIO

_SIZE = struct.Struct("!Q")


def _send(stream: BinaryIO, message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_SIZE.pack(len(data)))
    stream.write(data)
    stream.flush()


def _receive(stream: BinaryIO) -> Any:
    head = stream.read(_SIZE.size)
    if len(head) < _SIZE.size:
        raise EOFError("the copy worker's stream ended")
    (size,) = _SIZE.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the copy worker's stream ended mid-message")
    return pickle.loads(data)


def _widen(stream: Any) -> None:
    """Give a pipe 1 MB of buffer (Linux), so that a chunk or an answer fits in it."""
    try:
        import fcntl

        fcntl.fcntl(stream.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except (OSError, ValueError, ImportError):  # not Linux, or a lower pipe-max-size
        pass


class WorkerError(RuntimeError):
    """The copy worker failed or ended; the message has its error."""


class CopyWorker:
    """One child process encoding chunks; ``submit`` returns a Future of a ``Chunk``.

    :param columns: the target table's columns.
    :param rules: the table's staging rules, or None.
    :param constants: the columns holding one value on every row.
    """

    def __init__(self, columns: Any, rules: Any, constants: Any) -> None:
        package_root = str(Path(__file__).resolve().parents[1])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "sparkify.copy_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            bufsize=1 << 16,
        )
        for stream in (self._process.stdin, self._process.stdout):
            _widen(stream)
        self._lock = threading.Lock()
        self._pending: deque[Future] = deque()
        self.peak_rss_kb = 0
        self._failure: BaseException | None = None
        _send(self._process.stdin, (list(columns), rules, dict(constants or {})))
        self._reader = threading.Thread(target=self._read, name="copy-worker-reader", daemon=True)
        self._reader.start()

    @property
    def outstanding(self) -> int:
        """Chunks sent and not answered yet."""
        return len(self._pending)

    def submit(self, key: str, first_line: int, data: bytes) -> Future:
        """Send one chunk (its lines joined by newlines); its ``Chunk`` comes back."""
        future: Future = Future()
        with self._lock:
            if self._failure is not None:
                raise WorkerError(str(self._failure))
            self._pending.append(future)
            try:
                _send(self._process.stdin, (key, first_line, data))
            except (BrokenPipeError, OSError, ValueError) as exc:
                self._pending.remove(future)
                raise WorkerError(f"the copy worker ended: {exc}") from exc
        return future

    def _read(self) -> None:
        try:
            while True:
                message = _receive(self._process.stdout)
                if isinstance(message, tuple) and message[0] == "rss":
                    self.peak_rss_kb = message[1]
                    break
                future = self._pending.popleft()
                if isinstance(message, str):
                    future.set_exception(WorkerError(message))
                else:
                    future.set_result(message)
        except BaseException as exc:
            self._failure = exc
        with self._lock:
            while self._pending:
                self._pending.popleft().set_exception(
                    WorkerError(f"the copy worker ended: {self._failure}")
                )

    def close(self, timeout: float = 10.0) -> None:
        """End the child (after the chunks it has) and wait for it."""
        with self._lock, _suppress():
            self._process.stdin.close()
        self._reader.join(timeout)
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        with _suppress():
            self._process.stdout.close()


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return exc[0] is not None and issubclass(exc[0], OSError | ValueError)  # type: ignore[arg-type]


def main() -> int:
    """The child: encode chunks from stdin until it closes, then report the peak RSS."""
    import resource
    import traceback

    from sparkify.json_batch import ChunkEncoder

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    columns, rules, constants = _receive(stdin)
    encoder = ChunkEncoder(columns, rules, constants)
    while True:
        try:
            key, first_line, data = _receive(stdin)
        except EOFError:
            break
        try:
            reply: Any = encoder.encode(key, first_line, None, data)
        except Exception:
            reply = traceback.format_exc()
        _send(stdout, reply)
    _send(stdout, ("rss", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
    return 0


if __name__ == "__main__":
    sys.exit(main())
