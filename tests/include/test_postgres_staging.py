"""postgres_staging.stage into a real PostgreSQL: the run's rows, its counts, its rejects."""

from __future__ import annotations

import json

import pytest

from sparkify import postgres_staging, staging_tables
from sparkify.staging_rejects import StagingError
from tests.fakes import FakeS3Client, logged_out_event, play_event
from tests.stack_support import connect, fresh_database

pytestmark = pytest.mark.stack

DB, BUCKET, RUN = "sparkify_test_pg_staging", "bucket", "scheduled__2018-11-01T00:00:00+00:00"
DAY1 = "log_data/2018/11/2018-11-01-events.json"
DAY2 = "log_data/2018/11/2018-11-02-events.json"


def lines(*records: dict) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def stage(objects: dict[str, bytes], max_rejects: int = 0) -> postgres_staging.PostgresLoad:
    settings = postgres_staging.PostgresStaging(
        schema="public", table_name="staging_events", bucket=BUCKET, run_id=RUN,
        max_workers=2, max_rejects=max_rejects,
    )  # fmt: skip
    with connect(DB) as conn, conn.cursor() as cursor:
        columns = staging_tables.table_columns(cursor, "public", "staging_events")
        load = postgres_staging.stage(
            cursor, FakeS3Client({BUCKET: objects}), settings, columns, sorted(objects)
        )
        conn.commit()
    return load


@pytest.fixture(autouse=True)
def warehouse() -> None:
    fresh_database(DB)


def test_the_runs_rows_carry_their_object_and_run_and_its_plays_are_counted():
    hour = 3_600_000
    load = stage({
        DAY1: lines(play_event(), play_event(itemInSession=1, ts=1541030400000 + hour),
                    logged_out_event()),
        DAY2: lines(play_event(sessionId=8), play_event(sessionId=8)),  # one play, twice
    })  # fmt: skip
    assert (load.rows, load.rejects) == (5, [])
    with connect(DB) as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT source_key, run_id, count(*), bool_and(staged_at IS NOT NULL) "
            "FROM staging_events GROUP BY 1, 2 ORDER BY 1"
        )
        assert cursor.fetchall() == [(DAY1, RUN, 3, True), (DAY2, RUN, 2, True)]
        cursor.execute(
            "SELECT source_key, to_char(hour_start, 'YYYY-MM-DD HH24'), plays, run_id "
            "FROM staging_counts ORDER BY 1, 2"
        )
        assert cursor.fetchall() == [
            (DAY1, "2018-11-01 00", 1, RUN),
            (DAY1, "2018-11-01 01", 1, RUN),
            (DAY2, "2018-11-01 00", 1, RUN),  # distinct plays: the repeat counts once
        ]


def test_bad_records_within_the_limit_are_returned_and_the_rest_loads():
    load = stage({DAY1: lines(play_event()) + b"{broken\n" + lines(play_event(userId="x"))}, 2)
    assert load.rows == 1
    assert [(r.source_key, r.line_number) for r in load.rejects] == [(DAY1, 2), (DAY1, 3)]
    assert load.rejects[1].reason.startswith("userid is not a whole number")


def test_one_bad_record_too_many_raises_naming_it():
    with pytest.raises(StagingError, match=f"{DAY1} line 2: malformed JSON"):
        stage({DAY1: lines(play_event()) + b"{broken\n"})
