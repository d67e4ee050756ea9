"""Incremental song staging on the real stack: only new or changed files are read, and the
staging table ends exactly as a full reload leaves it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from astro.files import File
from astro.table import Metadata, Table

from dev.sample_data import SampleSpec, generate
from operators.stage_redshift import StageToRedshiftOperator
from tests.fakes import apply_environment
from tests.stack_support import (
    connect,
    connection_environment,
    count_rows,
    fresh_bucket,
    fresh_database,
    table_rows,
    upload_folder,
)

pytestmark = pytest.mark.stack

DB, BUCKET = "sparkify_test_incremental", "sparkify-test-incremental"
DAY1 = datetime(2018, 11, 1, tzinfo=UTC)
CONTEXT = {
    "data_interval_start": DAY1,
    "data_interval_end": DAY1 + timedelta(days=1),
    "run_id": "r",
}


@pytest.fixture
def setup(tmp_path, monkeypatch):
    generate(tmp_path, SampleSpec(start=DAY1.date(), days=1, songs=40, seed=21))
    client = fresh_bucket(BUCKET)
    upload_folder(client, BUCKET, tmp_path)
    fresh_database(DB)
    apply_environment(monkeypatch, connection_environment(DB, BUCKET))
    keys = sorted(
        p.relative_to(tmp_path).as_posix() for p in (tmp_path / "song_data").rglob("*.json")
    )
    return client, keys


def songs(full_reload: bool | str = False) -> StageToRedshiftOperator:
    return StageToRedshiftOperator(
        task_id="stage_songs",
        input_file=File(f"s3://{BUCKET}/song_data/", conn_id="aws-redshift"),
        output_table=Table(
            name="staging_songs", conn_id="redshift", metadata=Metadata(schema="public")
        ),
        incremental=True,
        full_reload=full_reload,
    )


def rows() -> list[tuple]:
    return table_rows(DB, "staging_songs", ["source_key", "song_id"])


def song(song_id: str, title: str) -> bytes:
    record = {
        "num_songs": 1, "artist_id": "ARZZZZZZZZZZZZZZZZ", "artist_latitude": None,
        "artist_longitude": None, "artist_location": "", "artist_name": "New Artist",
        "song_id": song_id, "title": title, "duration": 123.45678, "year": 0,
    }  # fmt: skip
    return json.dumps(record).encode()


def test_only_new_and_changed_files_are_read_and_rows_match_a_full_reload(setup, caplog):
    client, keys = setup
    songs().execute(CONTEXT)
    assert count_rows(DB, "staging_songs") == len(keys)
    assert count_rows(DB, "staging_manifest") == len(keys)

    client.put_object(Bucket=BUCKET, Key=keys[0], Body=song("SOCHANGED0000000AA", "Changed"))
    client.put_object(
        Bucket=BUCKET, Key="song_data/Z/Z/Z/TRZZZNEW.json", Body=song("SONEW000000000000A", "New")
    )
    client.delete_object(Bucket=BUCKET, Key=keys[1])
    caplog.clear()
    songs().execute(CONTEXT)
    assert "Incremental load: 2 new or changed, 1 removed, 38 unchanged object(s)" in caplog.text
    incremental = rows()
    assert len(incremental) == len(keys)  # one removed, one added
    assert {r[6]: r[7] for r in incremental}["SOCHANGED0000000AA"] == "Changed"
    assert count_rows(DB, "staging_manifest") == len(keys)

    caplog.clear()
    songs(full_reload="True").execute(CONTEXT)
    assert "Full load of 40 objects" in caplog.text
    assert rows() == incremental


def test_nothing_changed_reads_nothing_and_keeps_the_rows(setup, caplog):
    songs().execute(CONTEXT)
    before = rows()
    caplog.clear()
    songs().execute(CONTEXT)
    # Seen before taking the song mirror's lock, so the run does not wait behind others.
    assert "staging_songs already mirrors the 40 object(s) listed" in caplog.text
    assert rows() == before


def test_a_run_finding_the_mirror_current_never_waits_for_the_lock(setup):
    """Runs overlap: while another run holds the song mirror's lock, a run with nothing
    new to stage finishes at once instead of queueing behind it."""
    import threading

    from airflow.models.baseoperator import ExecutorSafeguard

    songs().execute(CONTEXT)
    before = rows()
    done = threading.Event()

    def stage_again() -> None:
        ExecutorSafeguard._sentinel.callers = {}  # set up in the main thread only
        songs().execute(CONTEXT)
        done.set()

    with connect(DB) as holder, holder.cursor() as cursor:
        cursor.execute("LOCK TABLE staging_songs, staging_manifest IN EXCLUSIVE MODE")
        worker = threading.Thread(target=stage_again)
        worker.start()
        finished = done.wait(timeout=60)
        holder.rollback()
    worker.join()
    assert finished, "the load waited for the lock"
    assert rows() == before


def test_full_reload_must_render_to_a_boolean(setup):
    with pytest.raises(ValueError, match="full_reload must render to True or False, not 'maybe'"):
        songs(full_reload="maybe").execute(CONTEXT)
