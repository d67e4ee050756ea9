"""RowCountSnapshotOperator and RunReportOperator on real PostgreSQL: counts before and
after, this run's rejects and checks (latest attempt) only, task times; files on disk."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from airflow.utils.state import TaskInstanceState

from operators.run_report import RowCountSnapshotOperator, RunReportOperator
from sparkify.run_report import REPORT_TABLES
from tests.stack_support import connect, connection_environment, fresh_database

pytestmark = pytest.mark.stack

DB = "sparkify_test_report_operator"
DB_FIRST_RUN = "sparkify_test_report_first_run"
RUN_ID = "scheduled__2018-11-01T00:00:00+00:00"
OTHER_RUN = "scheduled__2018-10-31T00:00:00+00:00"
DAY = datetime(2018, 11, 1, tzinfo=UTC)
STARTED = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
T1, T2 = datetime(2018, 11, 1, 10, 0, 0), datetime(2018, 11, 1, 11, 30, 0)


def use_database(monkeypatch, database: str) -> None:
    for name, value in connection_environment(database).items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def warehouse(monkeypatch) -> str:
    fresh_database(DB)
    use_database(monkeypatch, DB)
    with connect(DB) as conn, conn.cursor() as cursor:
        cursor.execute(
            "INSERT INTO staging_events (page, ts, userid, sessionid, iteminsession, level) VALUES "
            "('NextSong', 1541066400000, '1', 5, 0, 'free'), "
            "('NextSong', 1541071800000, '2', 6, 0, 'paid'), "
            "('Home', 1541071800001, '', 7, 0, 'free')"
        )
        cursor.execute(
            "INSERT INTO users VALUES "
            "(1, 'A', 'B', 'F', 'free', %s), (2, 'C', 'D', 'M', 'paid', %s)",
            (T1, T2),
        )
        cursor.execute(
            "INSERT INTO songplays VALUES ('a', %s, 1, 'free', NULL, NULL, 5, 'X', 'UA'), "
            "('b', %s, 2, 'paid', NULL, NULL, 6, 'Y', 'UA')",
            (T1, T2),
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
    return RowCountSnapshotOperator(task_id="snapshot_row_counts", conn_id="sparkify_postgres")


def report(tmp_path, before) -> RunReportOperator:
    return RunReportOperator(
        task_id="write_run_report",
        conn_id="sparkify_postgres",
        before=before,
        reports_dir=str(tmp_path / "reports"),
    )


def test_snapshot_on_the_first_run_counts_absent_tables_as_none(monkeypatch):
    fresh_database(DB_FIRST_RUN, with_tables=False)
    use_database(monkeypatch, DB_FIRST_RUN)
    assert snapshot().execute({}) == dict.fromkeys(REPORT_TABLES)


def test_snapshot_counts_every_table(warehouse):
    counts = snapshot().execute({})
    assert counts == {
        "staging_events": 3, "staging_songs": 0, "songplays": 2, "users": 2, "songs": 0,
        "artists": 0, "time": 0,
    }  # fmt: skip
    assert json.loads(json.dumps(counts)) == counts  # travels through XCom as JSON


def test_report_files_show_counts_rejects_checks_and_tasks(warehouse, tmp_path, caplog):
    before = {**dict.fromkeys(REPORT_TABLES, 0), "songplays": 1, "time": None}
    caplog.set_level("INFO")
    paths = report(tmp_path, before).execute(context())

    folder = tmp_path / "reports" / "sparkify_etl"
    name = "scheduled__2018-11-01T00_00_00_00_00"
    assert paths == {"markdown": str(folder / f"{name}.md"), "html": str(folder / f"{name}.html")}
    assert sorted(p.name for p in folder.iterdir()) == [f"{name}.html", f"{name}.md"]
    logged = [r.getMessage() for r in caplog.records]
    assert f"Run report: file://{folder}/{name}.md" in logged
    assert f"Run report: file://{folder}/{name}.html" in logged

    markdown = (folder / f"{name}.md").read_text()
    assert markdown.startswith(f"# Run report: sparkify_etl / {RUN_ID}\n")
    assert "- **Outcome:** succeeded" in markdown
    assert "- **Data interval:** 2018-11-01 00:00:00 UTC to 2018-11-02 00:00:00 UTC" in markdown
    for row in [
        "| `staging_events` | 0 | 3 | +3 |",
        "| `staging_songs` | 0 | 0 | 0 |",
        "| `songplays` | 1 | 2 | +1 |",
        "| `users` | 0 | 2 | +2 |",
        "| `time` | absent | 0 | 0 |",
        "| `songs` | 0 | 0 | 0 |",
        "| `artists` | 0 | 0 | 0 |",
    ]:
        assert row in markdown, row
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
    assert '<td><code>songplays</code></td><td class="num">1</td><td class="num">2</td>' in page


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
    paths = report(tmp_path, None).execute(ctx)
    markdown = Path(paths["markdown"]).read_text()
    assert (
        "- **Outcome:** FAILED - failed task(s): stage_events; 1 task(s) not run (upstream failed)"
        in (markdown)
    )
    assert "| `songplays` | unknown | 2 |  |" in markdown
    assert "No check results for this run" in markdown


def test_an_unreachable_warehouse_is_noted_in_the_report(warehouse, tmp_path, monkeypatch):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv(
        "AIRFLOW_CONN_SPARKIFY_POSTGRES",
        json.dumps({"conn_type": "postgres", "host": "127.0.0.1", "port": port,
                    "login": "sparkify", "password": "sparkify", "schema": DB}),
    )  # fmt: skip
    paths = report(tmp_path, {"songplays": 1}).execute(context())
    markdown = Path(paths["markdown"]).read_text()
    assert "- **Warehouse:** not readable at report time: cannot connect to the warehouse" in (
        markdown
    )
    assert "| `songplays` | 1 | unknown |  |" in markdown
    assert "| `stage_events` | success |" in markdown  # the tasks are still there
