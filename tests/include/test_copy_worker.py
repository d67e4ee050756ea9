"""Unit tests for sparkify.copy_worker: the child process encoding chunks for json_copy."""

from __future__ import annotations

import json

import pytest

from sparkify.copy_worker import CopyWorker, WorkerError
from sparkify.json_batch import ChunkEncoder
from sparkify.json_encode import Column
from sparkify.staging_rules import RULES
from tests.fakes import STAGING_EVENTS_INFO
from tests.fakes import play_event as play

COLUMNS = [Column(*c) for c in STAGING_EVENTS_INFO]
CONSTANTS = {"run_id": "manual__1", "staged_at": None}
KEY = "log_data/a.json"


def test_the_worker_answers_each_chunk_as_this_process_would_in_order():
    lines = [json.dumps(play(itemInSession=n)).encode() for n in range(40)]
    lines[5] = b'{"ts": "x"}'
    here = ChunkEncoder(COLUMNS, RULES["staging_events"], CONSTANTS)
    worker = CopyWorker(COLUMNS, RULES["staging_events"], CONSTANTS)
    try:
        futures = [
            worker.submit(KEY, 1 + 20 * n, b"\n".join(lines[20 * n : 20 * n + 20]))
            for n in range(2)
        ]
        answers = [f.result(timeout=30) for f in futures]
    finally:
        worker.close()
    expected = [here.encode(KEY, 1 + 20 * n, lines[20 * n : 20 * n + 20]) for n in range(2)]
    assert answers == expected
    assert answers[0].rejects == [(6, "ts must be an integer, got 'x'", b'{"ts": "x"}')]
    assert worker.peak_rss_kb > 0  # reported as it ended


def test_a_worker_that_cannot_start_its_encoder_fails_every_chunk_with_its_error():
    worker = CopyWorker([Column("at", "interval", True)], None, None)
    try:
        with pytest.raises(WorkerError, match="ended"):
            worker.submit(KEY, 1, b"{}").result(timeout=30)
    except WorkerError:
        pass  # the child was already gone when the chunk was sent: the same failure
    finally:
        worker.close()
