"""sparkify_daily_report's tasks on real PostgreSQL: the DAG's own astro-sdk operators
(transform, then dataframe) run against a test database; tables land in schema public
under their explicit names, and the Markdown written at the reports URL says what the
tables hold. The queries are include/sql/report_*.sql."""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace

import pytest
from airflow.models import DagBag

from sparkify.report_store import read_text
from sparkify.sql import read_sql
from sparkify.tables import warehouse_table
from tests.stack_support import connect, connection_environment, fresh_database, table_rows

pytestmark = pytest.mark.stack

DB = "sparkify_test_report_daily"
DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "sparkify_daily_report.py"


@pytest.fixture(scope="module")
def dag():
    bag = DagBag(dag_folder=str(DAG_FILE), include_examples=False)
    assert bag.import_errors == {}
    return bag.dags["sparkify_daily_report"]


@pytest.fixture
def warehouse(monkeypatch, tmp_path) -> str:
    fresh_database(DB)
    for name, value in connection_environment(DB).items():
        monkeypatch.setenv(name, value)
    # Never the sparkify-local bucket of `make run`: a folder of the test.
    monkeypatch.setenv("AIRFLOW_VAR_SPARKIFY_REPORTS_URL", (tmp_path / "reports").as_uri())
    return DB


def fill(plays: list[tuple]) -> None:
    with connect(DB) as conn, conn.cursor() as cursor:
        cursor.execute(
            "INSERT INTO songs VALUES ('SO1', 'First <b>Song</b>', 'AR1', NULL, 200), "
            "('SO2', 'Second', 'AR2', NULL, 100), ('SO3', 'Third', 'AR1', NULL, 90)"
        )
        cursor.execute("INSERT INTO artists VALUES ('AR1', 'Band | One', NULL, NULL, NULL)")
        cursor.executemany(
            "INSERT INTO songplays VALUES (%s, %s, %s, %s, %s, %s, 1, 'loc', 'ua')", plays
        )
        conn.commit()


PLAYS = [
    # the latest day: 2018-11-02
    ("p1", "2018-11-02 00:00:00", 1, "free", "SO1", "AR1"),
    ("p2", "2018-11-02 10:00:00", 2, "paid", "SO1", "AR1"),
    ("p3", "2018-11-02 11:00:00", 2, "paid", "SO1", "AR1"),
    ("p4", "2018-11-02 12:00:00", 3, "free", "SO2", "AR2"),  # artist not in artists
    ("p5", "2018-11-02 23:59:59", 3, "paid", None, None),  # unmatched play: no title
    ("p6", "2018-11-02 13:00:00", 4, "paid", "SO3", "AR1"),
    # an earlier day: not in the report
    ("p7", "2018-11-01 23:59:59", 5, "free", "SO2", "AR2"),
    ("p8", "2018-11-01 08:00:00", 5, "free", "SO2", "AR2"),
    ("p9", "2018-11-01 09:00:00", 5, "free", "SO2", "AR2"),
]


def run_task(dag, task_id: str):
    """Execute a copy of the DAG's task as a worker would, XComs kept in a dict."""
    pushed: dict = {}
    ti = SimpleNamespace(xcom_push=lambda key, value, **_: pushed.__setitem__(key, value))
    task = copy.deepcopy(dag.get_task(task_id))
    return task, task.execute({"ti": ti}), pushed


def test_transforms_build_the_latest_days_tables_in_public(dag, warehouse):
    fill(PLAYS)
    _, top, pushed = run_task(dag, "top_songs")
    assert (top.name, top.metadata.schema) == ("report_top_songs", "public")
    assert pushed["output_table_row_count"] == "3"
    rows = table_rows(DB, "report_top_songs", ["song_rank"])
    assert [row[1:] for row in rows] == [
        (1, "SO1", "First <b>Song</b>", "Band | One", 3, 2),
        (2, "SO2", "Second", None, 1, 1),
        (3, "SO3", "Third", "Band | One", 1, 1),
    ]
    assert {str(row[0]) for row in rows} == {"2018-11-02"}

    _, levels, _ = run_task(dag, "users_by_level")
    assert levels.name == "report_users_by_level"
    rows = table_rows(DB, "report_users_by_level", ["level"])
    # user 3 played as free and as paid that day: counted in both levels
    assert [row[1:] for row in rows] == [("free", 2, 2), ("paid", 3, 4)]

    with connect(DB) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT schema_name FROM information_schema.schemata")
        assert "tmp_astro" not in {row[0] for row in cursor.fetchall()}


def test_a_rerun_replaces_the_tables_and_top_songs_stop_at_ten(dag, warehouse):
    plays = [(f"q{n}", "2018-11-03 10:00:00", n, "free", "SO1", "AR1") for n in range(3)]
    fill(plays)
    with connect(DB) as conn, conn.cursor() as cursor:
        for n in range(12):
            cursor.execute(
                "INSERT INTO songs VALUES (%s, %s, 'AR1', NULL, 100)",
                (f"S{n:02d}", f"Song {n:02d}"),
            )
            cursor.execute(
                "INSERT INTO songplays VALUES (%s, '2018-11-03 11:00', 1, 'paid', %s, 'AR1', 1, "
                "'l', 'u')",
                (f"r{n}", f"S{n:02d}"),
            )
        conn.commit()
    run_task(dag, "top_songs")
    run_task(dag, "top_songs")
    rows = table_rows(DB, "report_top_songs", ["song_rank"])
    assert len(rows) == 10
    assert rows[0][2:6] == ("SO1", "First <b>Song</b>", "Band | One", 3)
    assert [row[3] for row in rows[1:]] == [f"Song {n:02d}" for n in range(9)]


def test_write_daily_report_writes_the_markdown(dag, warehouse, tmp_path):
    fill(PLAYS)
    run_task(dag, "top_songs")
    run_task(dag, "users_by_level")
    task = copy.deepcopy(dag.get_task("write_daily_report"))
    # What the upstream XComs hold at run time: the transforms' output tables.
    task.op_args = (warehouse_table("report_top_songs"), warehouse_table("report_users_by_level"))
    url = task.execute({"ti": SimpleNamespace()})

    assert url == (tmp_path / "reports" / "sparkify_daily_report" / "2018-11-02.md").as_uri()
    assert read_text(url) == (
        "# Sparkify daily report: 2018-11-02\n"
        "\n"
        "## Top songs\n"
        "\n"
        "| # | song | artist | plays | listeners |\n"
        "|---:|---|---|---:|---:|\n"
        "| 1 | `First <b>Song</b>` | `Band \\| One` | 3 | 2 |\n"
        "| 2 | `Second` |  | 1 | 1 |\n"
        "| 3 | `Third` | `Band \\| One` | 1 | 1 |\n"
        "\n"
        "## Active users by level\n"
        "\n"
        "| level | active users | plays |\n"
        "|---|---:|---:|\n"
        "| `free` | 2 | 2 |\n"
        "| `paid` | 3 | 4 |\n"
        "\n"
        "6 plays that day; a user who changed level counts in both levels.\n"
    )


def test_an_empty_warehouse_gives_a_report_saying_so(dag, warehouse, tmp_path):
    run_task(dag, "top_songs")
    run_task(dag, "users_by_level")
    task = copy.deepcopy(dag.get_task("write_daily_report"))
    task.op_args = (warehouse_table("report_top_songs"), warehouse_table("report_users_by_level"))
    url = task.execute({"ti": SimpleNamespace()})
    assert url.endswith("/sparkify_daily_report/no-plays.md")
    assert read_text(url) == "# Sparkify daily report\n\nNo plays in `songplays` yet.\n"


def test_without_the_reports_variable_the_write_fails_naming_it(dag, warehouse, monkeypatch):
    import pandas as pd

    from dags.sparkify_daily_report import write_daily_markdown

    monkeypatch.delenv("AIRFLOW_VAR_SPARKIFY_REPORTS_URL")
    empty = pd.DataFrame({"day": []})
    with pytest.raises(ValueError, match="sparkify_reports_url"):
        write_daily_markdown(empty, empty)


def test_the_queries_live_in_include_sql():
    assert read_sql("report_top_songs").rstrip().endswith("LIMIT 10")  # TOP_SONGS
    for name in ("report_top_songs", "report_users_by_level"):
        assert "{{ songplays }}" in read_sql(name)
