"""RowCountSnapshotOperator and RunReportOperator on real PostgreSQL and the local S3 API:
counts before and after in each table's scope (this run's staging_events rows, the run's
interval of songplays and time, whole shared tables) while another run's rows and another
interval's sit in the same tables, this run's rejects and checks (latest attempt) only,
task times; the report as files (file:// URLs) and as objects in a bucket of the tests'
own."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from airflow.utils.state import TaskInstanceState

from operators.run_report import RowCountSnapshotOperator, RunReportOperator
from sparkify.run_report import REPORT_TABLES, latest_report, read_text
from tests.stack_support import (
    S3_ENDPOINT,
    connect,
    connection_environment,
    fresh_bucket,
    fresh_database,
)

pytestmark = pytest.mark.stack

DB = "sparkify_test_report_operator"
DB_FIRST_RUN = "sparkify_test_report_first_run"
RUN_ID = "scheduled__2018-11-01T00:00:00+00:00"
OTHER_RUN = "scheduled__2018-10-31T00:00:00+00:00"
DAY = datetime(2018, 11, 1, tzinfo=UTC)
STARTED = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
T1, T2 = datetime(2018, 11, 1, 10, 0, 0), datetime(2018, 11, 1, 11, 30, 0)
# Another run's interval, the day before, and the first instant of the next day (the
# interval's end is exclusive): rows of other intervals, never this run's.
T_OTHER, T_NEXT = datetime(2018, 10, 31, 23, 59, 59), datetime(2018, 11, 2, 0, 0, 0)
BUCKET = "sparkify-test-run-report"
NAME = "scheduled__2018-11-01T00_00_00_00_00"  # RUN_ID as a file name
SCRIPT = "<script>alert('x')</script>"
# The local S3 API as the connection aws-redshift. Airflow looks a connection id up in the
# environment as AIRFLOW_CONN_<id upper-cased>, the "-" kept: AIRFLOW_CONN_AWS-REDSHIFT.
LOCAL_S3 = {
    "conn_type": "aws",
    "login": "local-access-key",
    "password": "local-secret-key",
    "extra": {"endpoint_url": S3_ENDPOINT, "region_name": "us-east-1"},
}


def use_database(monkeypatch, database: str) -> None:
    for name, value in connection_environment(database).items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def bucket(monkeypatch):
    """An empty bucket of these tests, reached through the connection aws-redshift."""
    from airflow.io import store

    monkeypatch.setenv("AIRFLOW_CONN_AWS-REDSHIFT", json.dumps(LOCAL_S3))
    monkeypatch.setattr(store, "_STORE_CACHE", {})  # attach anew: this test's connection
    return fresh_bucket(BUCKET)


@pytest.fixture
def warehouse(monkeypatch) -> str:
    fresh_database(DB)
    use_database(monkeypatch, DB)
    with connect(DB) as conn, conn.cursor() as cursor:
        # staging_events as create_tables.sql makes it: each run's rows apart (run_id).
        cursor.execute(
            "INSERT INTO staging_events (page, ts, userid, sessionid, iteminsession, level, "
            "run_id, staged_at) VALUES "
            "('NextSong', 1541066400000, '1', 5, 0, 'free', %(run)s, now()), "
            "('NextSong', 1541071800000, '2', 6, 0, 'paid', %(run)s, now()), "
            "('Home', 1541071800001, '', 7, 0, 'free', %(run)s, now()), "
            "('NextSong', 1541030399000, '3', 8, 0, 'free', %(other)s, now()), "
            "('NextSong', 1541030399001, '3', 8, 1, 'free', %(other)s, now()), "
            "('NextSong', 1541030399002, '3', 8, 2, 'free', NULL, NULL)",
            {"run": RUN_ID, "other": OTHER_RUN},
        )
        cursor.execute(
            "INSERT INTO users VALUES "
            "(1, 'A', 'B', 'F', 'free', %s), (2, 'C', 'D', 'M', 'paid', %s)",
            (T1, T2),
        )
        cursor.execute(
            "INSERT INTO songplays VALUES ('a', %s, 1, 'free', NULL, NULL, 5, 'X', 'UA'), "
            "('b', %s, 2, 'paid', NULL, NULL, 6, 'Y', 'UA'), "
            "('c', %s, 3, 'free', NULL, NULL, 8, 'Z', 'UA'), "
            "('d', %s, 3, 'free', NULL, NULL, 9, 'Z', 'UA')",
            (T1, T2, T_OTHER, T_NEXT),
        )
        cursor.executemany(
            'INSERT INTO "time" (start_time, hour) VALUES (%s, %s)',
            [(t, t.hour) for t in (T1, T2, T_OTHER, T_NEXT)],
        )
        rejects = [
            (RUN_ID, "staging_events", "log_data/2018/11/2018-11-01-events.json", 4,
             "malformed JSON: Expecting ',' delimiter"),
            (RUN_ID, "staging_songs", "song_data/A/<b>.json", 1, "value too long for <title>"),
            (OTHER_RUN, "staging_events", "log_data/2018/10/2018-10-31-events.json", 9,
             "other run's reject"),
        ]  # fmt: skip
        cursor.executemany(
            "INSERT INTO staging_rejects (run_id, table_name, source_key, line_number, reason, "
            "raw_line, rejected_at) VALUES (%s, %s, %s, %s, %s, 'raw', now())",
            rejects,
        )
        results = [
            # The first attempt of this run: one check failed; the retry passed both.
            (RUN_ID, "users_has_rows", "users", False, "0", ">= 1", T1),
            (RUN_ID, "users_has_rows", "users", True, "2", ">= 1", T2),
            (RUN_ID, "songplays_reconcile_with_staging", "songplays", True, "0", "== 0", T2),
            (OTHER_RUN, "other_runs_check", "songs", False, "9", "== 0", T2),
        ]
        cursor.executemany(
            "INSERT INTO data_quality_results (run_id, check_name, table_name, passed, "
            "observed, expected, checked_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            results,
        )
        conn.commit()
    return DB


def task_instance(task_id, state, offset, seconds=None, try_number=1):
    start = STARTED + timedelta(seconds=offset)
    end = start + timedelta(seconds=seconds) if seconds is not None else None
    return SimpleNamespace(
        task_id=task_id, state=state, start_date=start, end_date=end, duration=seconds,
        try_number=try_number, map_index=-1,
    )  # fmt: skip


TASK_INSTANCES = [
    task_instance("begin_execution", TaskInstanceState.SUCCESS, 0, 0.02),
    task_instance("snapshot_row_counts", TaskInstanceState.SUCCESS, 1, 0.4),
    task_instance("stage_events", TaskInstanceState.SUCCESS, 2, 12.5, try_number=2),
    task_instance("run_data_quality_checks", TaskInstanceState.SUCCESS, 20, 1.25),
    task_instance("write_run_report", TaskInstanceState.RUNNING, 22),
]


def context() -> dict:
    dag_run = SimpleNamespace(
        dag_id="sparkify_etl", start_date=STARTED, get_task_instances=lambda: TASK_INSTANCES
    )
    return {
        "dag_run": dag_run,
        "run_id": RUN_ID,
        "data_interval_start": DAY,
        "data_interval_end": DAY + timedelta(days=1),
    }


def snapshot() -> RowCountSnapshotOperator:
    return RowCountSnapshotOperator(task_id="snapshot_row_counts", conn_id="redshift")


SCOPES = {
    "staging_events": "run", "staging_songs": "table", "songplays": "interval",
    "users": "table", "songs": "table", "artists": "table", "time": "interval",
}  # fmt: skip


def before(**rows) -> dict:
    """A snapshot's XCom: ``rows`` per table (others 0), in each table's scope."""
    return {"rows": {**dict.fromkeys(REPORT_TABLES, 0), **rows}, "scopes": SCOPES}


def report(tmp_path, before, reports_url: str | None = None) -> RunReportOperator:
    return RunReportOperator(
        task_id="write_run_report",
        conn_id="redshift",
        before=before,
        reports_url=reports_url or (tmp_path / "reports").as_uri(),
    )


def test_snapshot_on_the_first_run_counts_absent_tables_as_none(monkeypatch):
    fresh_database(DB_FIRST_RUN, with_tables=False)
    use_database(monkeypatch, DB_FIRST_RUN)
    assert snapshot().execute(context()) == {"rows": dict.fromkeys(REPORT_TABLES), "scopes": SCOPES}
    # Absent is absent in any scope, even without the run and interval to scope by.
    assert snapshot().execute({})["rows"] == dict.fromkeys(REPORT_TABLES)


def test_snapshot_counts_this_runs_rows_its_interval_and_whole_shared_tables(warehouse):
    """Another run's staging_events rows and other intervals' songplays and time rows are in
    the tables: this run's counts leave them out; the shared tables count whole."""
    counts = snapshot().execute(context())
    assert counts == {
        "rows": {"staging_events": 3, "staging_songs": 0, "songplays": 2, "users": 2,
                 "songs": 0, "artists": 0, "time": 2},
        "scopes": SCOPES,
    }  # fmt: skip
    assert json.loads(json.dumps(counts)) == counts  # travels through XCom as JSON
    other = {**context(), "run_id": OTHER_RUN, "data_interval_start": DAY - timedelta(days=1),
             "data_interval_end": DAY}  # fmt: skip
    assert {t: n for t, n in snapshot().execute(other)["rows"].items() if n} == {
        "staging_events": 2,
        "songplays": 1,
        "time": 1,
        "users": 2,
    }


def test_snapshot_of_an_old_staging_events_without_run_id(warehouse):
    """A warehouse from before run_id: none of staging_events' rows is this run's."""
    with connect(DB) as conn, conn.cursor() as cursor:
        cursor.execute("ALTER TABLE staging_events DROP COLUMN run_id")
        conn.commit()
    counts = snapshot().execute(context())
    assert counts["rows"]["staging_events"] == 0 and counts["rows"]["songplays"] == 2


def test_report_files_show_counts_rejects_checks_and_tasks(warehouse, tmp_path, caplog):
    caplog.set_level("INFO")
    urls = report(tmp_path, before(songplays=1, time=None)).execute(context())

    folder = tmp_path / "reports" / "sparkify_etl"
    name = NAME
    assert urls == {
        "markdown": (folder / f"{name}.md").as_uri(),
        "html": (folder / f"{name}.html").as_uri(),
    }
    assert sorted(p.name for p in folder.iterdir()) == [f"{name}.html", f"{name}.md"]
    logged = [r.getMessage() for r in caplog.records]
    assert f"Run report: file://{folder}/{name}.md" in logged
    assert f"Run report: file://{folder}/{name}.html" in logged

    markdown = (folder / f"{name}.md").read_text()
    assert markdown.startswith(f"# Run report: sparkify_etl / {RUN_ID}\n")
    assert "- **Outcome:** succeeded" in markdown
    assert "- **Data interval:** 2018-11-01 00:00:00 UTC to 2018-11-02 00:00:00 UTC" in markdown
    # Another run's 3 staging rows (one of them older than run_id) and two songplays and
    # time rows of other intervals are in the tables: not counted as this run's.
    for row in [
        "| `staging_events` | this run's rows | 0 | 3 | +3 |",
        "| `staging_songs` | whole table (shared by runs) | 0 | 0 | 0 |",
        "| `songplays` | the run's interval | 1 | 2 | +1 |",
        "| `users` | whole table (shared by runs) | 0 | 2 | +2 |",
        "| `time` | the run's interval | absent | 2 | +2 |",
        "| `songs` | whole table (shared by runs) | 0 | 0 | 0 |",
        "| `artists` | whole table (shared by runs) | 0 | 0 | 0 |",
    ]:
        assert row in markdown, row
    assert "- **whole table (shared by runs)** (staging_songs, users, songs, artists): " in (
        markdown
    )
    assert "its change may include other runs' writes." in markdown
    # This run's checks, of its latest attempt; nothing of the other run.
    assert "## Data quality checks: 2 of 2 passed" in markdown
    assert "| `users_has_rows` | `users` | passed | `2` | `>= 1` |" in markdown
    assert "| `songplays_reconcile_with_staging` | `songplays` | passed | `0` | `== 0` |" in (
        markdown
    )
    assert "other_runs_check" not in markdown and "`0` | `>= 1`" not in markdown
    assert "## Rejected records: 2 (staging_events 1, staging_songs 1)" in markdown
    assert (
        "| `staging_events` | `log_data/2018/11/2018-11-01-events.json` | 4 | "
        "`malformed JSON: Expecting ',' delimiter` |"
    ) in markdown
    assert "| `staging_songs` | `song_data/A/<b>.json` | 1 | `value too long for <title>` |" in (
        markdown
    )
    assert "other run's reject" not in markdown
    assert (
        "| `stage_events` | success | 2024-05-01 12:00:02 UTC | 2024-05-01 12:00:14 UTC "
        "| 12.5 s | 2 |"
    ) in markdown
    assert "| `run_data_quality_checks` | success |" in markdown
    assert (
        "| `write_run_report` | running (this report) | 2024-05-01 12:00:22 UTC | - | - | 1 |"
    ) in markdown

    page = (folder / f"{name}.html").read_text()
    assert "<code>song_data/A/&lt;b&gt;.json</code>" in page
    assert "<code>value too long for &lt;title&gt;</code>" in page
    assert "<title>" not in page.replace("<title>Run report", "")
    assert (
        "<td><code>songplays</code></td><td>the run&#39;s interval</td>"
        '<td class="num">1</td><td class="num">2</td>'
    ) in page


def test_a_run_without_snapshot_or_checks_still_gets_its_report(warehouse, tmp_path):
    with connect(DB) as conn, conn.cursor() as cursor:
        cursor.execute("DELETE FROM data_quality_results")
        conn.commit()
    ctx = context()
    failed = [
        task_instance("stage_events", TaskInstanceState.FAILED, 2, 3.0, try_number=4),
        task_instance("run_data_quality_checks", TaskInstanceState.UPSTREAM_FAILED, 9),
    ]
    ctx["dag_run"].get_task_instances = lambda: failed
    urls = report(tmp_path, None).execute(ctx)
    markdown = read_text(urls["markdown"])
    assert (
        "- **Outcome:** FAILED - failed task(s): stage_events; 1 task(s) not run (upstream failed)"
        in (markdown)
    )
    assert "| `songplays` | the run's interval | unknown | 2 |  |" in markdown
    assert "No check results for this run" in markdown


def test_an_older_whole_table_snapshot_leaves_the_scoped_tables_unknown(warehouse, tmp_path):
    """A snapshot from before the scopes (flat {table: rows}, whole tables) next to a
    report counting scopes: whole-table figures never pass for this run's."""
    flat = dict.fromkeys(REPORT_TABLES, 0) | {"songplays": 4, "staging_events": 6}
    markdown = read_text(report(tmp_path, flat).execute(context())["markdown"])
    assert "| `songplays` | the run's interval | unknown | 2 |  |" in markdown
    assert "| `staging_events` | this run's rows | unknown | 3 |  |" in markdown
    assert "| `users` | whole table (shared by runs) | 0 | 2 | +2 |" in markdown


def test_an_unreachable_warehouse_is_noted_in_the_report(warehouse, tmp_path, monkeypatch):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv(
        "AIRFLOW_CONN_REDSHIFT",
        json.dumps({"conn_type": "postgres", "host": "127.0.0.1", "port": port,
                    "login": "sparkify", "password": "unreachable-dw-password", "schema": DB}),
    )  # fmt: skip
    urls = report(tmp_path, before(songplays=1)).execute(context())
    markdown = read_text(urls["markdown"])
    assert "- **Warehouse:** not readable at report time: cannot connect to the warehouse" in (
        markdown
    )
    assert "| `songplays` | the run's interval | 1 | unknown |  |" in markdown
    assert "| `stage_events` | success |" in markdown  # the tasks are still there


# ----------------------------------------------------------------------------- S3


def add_reject(reason: str) -> None:
    with connect(DB) as conn, conn.cursor() as cursor:
        cursor.execute(
            "INSERT INTO staging_rejects (run_id, table_name, source_key, line_number, reason, "
            "raw_line, rejected_at) VALUES (%s, 'staging_events', 'log_data/x.json', 99, %s, "
            "'raw', now())",
            (RUN_ID, reason),
        )
        conn.commit()


def test_the_report_is_an_object_in_s3_with_the_reports_text(warehouse, bucket, tmp_path):
    add_reject(f"value {SCRIPT} too long")
    reports_url = f"s3://{BUCKET}/reports"
    urls = report(tmp_path, before(songplays=1), reports_url).execute(context())

    assert urls == {
        "markdown": f"{reports_url}/sparkify_etl/{NAME}.md",
        "html": f"{reports_url}/sparkify_etl/{NAME}.html",
    }
    keys = sorted(o["Key"] for o in bucket.list_objects_v2(Bucket=BUCKET)["Contents"])
    assert keys == [f"reports/sparkify_etl/{NAME}.html", f"reports/sparkify_etl/{NAME}.md"]
    markdown = bucket.get_object(Bucket=BUCKET, Key=f"reports/sparkify_etl/{NAME}.md")
    text = markdown["Body"].read().decode("utf-8")
    assert text.startswith(f"# Run report: sparkify_etl / {RUN_ID}\n")
    assert "| `songplays` | the run's interval | 1 | 2 | +1 |" in text
    assert "## Rejected records: 3 (staging_events 2, staging_songs 1)" in text
    assert markdown["ContentType"].startswith("text/markdown")
    # Read back as `make run` does: the newest report of the DAG, through the connection.
    assert latest_report(reports_url, "sparkify_etl") == urls["markdown"]
    assert read_text(urls["markdown"]) == text

    page = bucket.get_object(Bucket=BUCKET, Key=f"reports/sparkify_etl/{NAME}.html")
    assert page["ContentType"].startswith("text/html")
    html = page["Body"].read().decode("utf-8")
    assert "<script>" not in html
    assert "<code>value &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; too long</code>" in html


def test_a_failed_run_gets_its_report_in_s3_even_without_the_warehouse(
    warehouse, bucket, tmp_path, monkeypatch
):
    """What a teardown sees after a bad run: a failed task, others not run or not started,
    no snapshot, and a warehouse that does not answer."""
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv(
        "AIRFLOW_CONN_REDSHIFT",
        json.dumps({"conn_type": "postgres", "host": "127.0.0.1", "port": port,
                    "login": "sparkify", "password": "unreachable-dw-password", "schema": DB}),
    )  # fmt: skip
    ctx = context()
    ctx["dag_run"].get_task_instances = lambda: [
        task_instance("stage_events", TaskInstanceState.FAILED, 2, 3.0, try_number=4),
        task_instance("load_songplays_fact_table", TaskInstanceState.UPSTREAM_FAILED, 9),
        SimpleNamespace(task_id="stop_execution", state=None, start_date=None, end_date=None,
                        duration=None, try_number=0, map_index=-1),
        task_instance("write_run_report", TaskInstanceState.RUNNING, 10),
    ]  # fmt: skip
    urls = report(tmp_path, None, f"s3://{BUCKET}/reports").execute(ctx)
    markdown = read_text(urls["markdown"])
    assert "- **Outcome:** FAILED - failed task(s): stage_events; 1 task(s) not run" in markdown
    assert "- **Warehouse:** not readable at report time: cannot connect" in markdown
    assert "| `songplays` | the run's interval | unknown | unknown |  |" in markdown
    assert "| `stop_execution` | no status | - | - | - | 0 |" in markdown
    assert "<h1>Run report: sparkify_etl / " in read_text(urls["html"])


def test_the_reports_url_defaults_to_the_variable(warehouse, bucket, tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_SPARKIFY_REPORTS_URL", f"s3://{BUCKET}/from-variable")
    operator = RunReportOperator(task_id="write_run_report", conn_id="redshift")
    urls = operator.execute(context())
    assert urls["markdown"] == f"s3://{BUCKET}/from-variable/sparkify_etl/{NAME}.md"
    assert read_text(urls["markdown"]).startswith("# Run report: ")
