"""Unit tests for the run report (sparkify.run_report and the modules behind it): reading
(fake cursor), rendering through the templates, writing to file:// URLs."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from airflow.utils.state import TaskInstanceState as State

from sparkify.run_report import (
    INTERVAL_ROWS,
    REPORT_TABLES,
    RUN_ROWS,
    TABLE_SCOPES,
    WHOLE_TABLE,
    CheckRow,
    RejectRow,
    RowSnapshot,
    RunReport,
    TableCount,
    build_report,
    count_rows,
    format_duration,
    md_code,
    read_text,
    render_html,
    render_markdown,
    report_urls,
    scope_parameters,
    snapshot_rows,
    task_timings,
    write_report,
)
from sparkify.sql import read_sql
from tests.fakes import FakeCursor, Result

RUN_ID = "scheduled__2018-11-02T00:00:00+00:00"
T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
SCRIPT = "<script>alert('x')</script>"


def ti(task_id, state, start_s=None, seconds=None, try_number=1, duration=True):
    start = None if start_s is None else T0 + timedelta(seconds=start_s)
    end = None if start is None or seconds is None else start + timedelta(seconds=seconds)
    return SimpleNamespace(
        task_id=task_id,
        state=state,
        start_date=start,
        end_date=end,
        duration=seconds if duration else None,
        try_number=try_number,
        map_index=-1,
    )


TASKS = [
    ti("stop_execution", None),
    ti("load_songplays_fact_table", State.SUCCESS, 10, 2.5),
    ti("begin_execution", State.SUCCESS, 0, 0.01),
    ti("stage_events", State.SUCCESS, 3, 75, try_number=2, duration=False),
    ti("write_run_report", State.RUNNING, 20),
]


def sample_report(**overrides) -> RunReport:
    values = dict(
        dag_id="sparkify_etl",
        run_id=RUN_ID,
        interval_start=datetime(2018, 11, 2, tzinfo=UTC),
        interval_end=datetime(2018, 11, 3, tzinfo=UTC),
        generated_at=T0 + timedelta(seconds=21),
        run_started=T0,
        tables=(
            TableCount("staging_events", 120, 131, RUN_ROWS),
            TableCount("songplays", 1000, 1125, INTERVAL_ROWS),
            TableCount("users", 40, 40),
            TableCount("time", None, 97, INTERVAL_ROWS),
            TableCount("songs", 90, 80),
        ),
        checks=(
            CheckRow("songplays_has_rows", "songplays", True, "1125", ">= 1"),
            CheckRow("time_hour_in_range", "time", False, "3", "== 0"),
        ),
        rejects=(
            RejectRow("staging_events", "log_data/2018/11/2018-11-02-events.json", 7, "bad JSON"),
            RejectRow("staging_events", f"log_data/{SCRIPT}.json", 9, f"value {SCRIPT} | x"),
        ),
        rejects_by_table={"staging_events": 5},
        tasks=task_timings(TASKS),
        report_task_id="write_run_report",
    )
    values.update(overrides)
    return RunReport(**values)


def md_row(markdown: str, first_cell: str) -> list[str]:
    """The cells of the Markdown table row starting with ``first_cell``."""
    for line in markdown.splitlines():
        if line.startswith(f"| {first_cell} |"):
            return [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
    raise AssertionError(f"no row {first_cell!r} in:\n{markdown}")


# ----------------------------------------------------------------------------- files


def test_report_urls():
    md, page = report_urls("s3://bucket/reports/", "sparkify_etl", RUN_ID)
    assert md == "s3://bucket/reports/sparkify_etl/scheduled__2018-11-02T00_00_00_00_00.md"
    assert page == md.removesuffix(".md") + ".html"


def test_write_report_writes_both_files_and_no_temporary(tmp_path):
    md_url, html_url = write_report(sample_report(), tmp_path.as_uri())
    folder = tmp_path / "sparkify_etl"
    name = "scheduled__2018-11-02T00_00_00_00_00"
    assert (md_url, html_url) == (
        (folder / f"{name}.md").as_uri(),
        (folder / f"{name}.html").as_uri(),
    )
    assert (folder / f"{name}.md").read_text().startswith("# Run report: sparkify_etl / ")
    assert read_text(html_url).startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in folder.iterdir()) == [f"{name}.html", f"{name}.md"]


def test_write_report_renders_both_before_writing_either(tmp_path, monkeypatch):
    import sparkify.run_report as run_report

    def broken(report):
        raise RuntimeError("template broken")

    monkeypatch.setattr(run_report, "render_html", broken)
    with pytest.raises(RuntimeError, match="template broken"):
        write_report(sample_report(), tmp_path.as_uri())
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- reading


def test_task_timings_order_by_start_and_fill_durations():
    rows = task_timings(TASKS)
    assert [r.task_id for r in rows] == [
        "begin_execution",
        "stage_events",
        "load_songplays_fact_table",
        "write_run_report",
        "stop_execution",
    ]
    by_id = {r.task_id: r for r in rows}
    assert by_id["stage_events"].duration == 75.0  # from start and end: no duration given
    assert by_id["stage_events"].try_number == 2
    assert by_id["stop_execution"].state == "no status"
    assert by_id["write_run_report"].state == "running"
    assert by_id["write_run_report"].duration is None


def test_task_timings_without_start_dates_sort_by_end_and_mark_the_report_task():
    """``airflow dags test`` records no start date; the report task is still running."""
    tis = [
        SimpleNamespace(task_id=t, state=st, start_date=None, end_date=end, duration=None,
                        try_number=1)
        for t, st, end in [
            ("write_run_report", State.SCHEDULED, None),
            ("b", State.SUCCESS, T0 + timedelta(seconds=2)),
            ("stop_execution", State.SCHEDULED, None),
            ("a", State.SUCCESS, T0 + timedelta(seconds=1)),
        ]
    ]  # fmt: skip
    rows = task_timings(tis, report_task_id="write_run_report")
    assert [(r.task_id, r.state) for r in rows] == [
        ("a", "success"),
        ("b", "success"),
        ("stop_execution", "scheduled"),
        ("write_run_report", "running (this report)"),
    ]
    assert all(r.duration is None for r in rows)


def test_task_timings_naive_and_aware_starts_sort_together():
    naive = SimpleNamespace(task_id="a", state="success", start_date=datetime(2024, 5, 1, 13),
                            end_date=None, duration=None, try_number=1)  # fmt: skip
    aware = SimpleNamespace(task_id="b", state="success", start_date=T0, end_date=None,
                            duration=None, try_number=1)  # fmt: skip
    assert [r.task_id for r in task_timings([naive, aware])] == ["b", "a"]


def warehouse(present, counts, checks=(), rejects_by_table=None, rejects=(), columns=None):
    """A fake cursor answering the report's queries.

    ``counts``: table -> rows; ``columns``: table -> its columns (default: every table has
    the columns the scopes filter on).
    """

    def respond(sql, params):
        if "information_schema.tables" in sql:
            return Result(rows=[(t,) for t in present])
        if "information_schema.columns" in sql:
            every = {t: ("run_id", "start_time") for t in params["tables"]}
            found = every if columns is None else columns
            return Result(rows=[(t, c) for t in params["tables"] for c in found.get(t, ())])
        if "SELECT COUNT(*) FROM" in sql:
            table = re.search(r'FROM "\w+"\."(\w+)"', sql).group(1)
            return Result(rows=[(counts[table],)])
        if "data_quality_results" in sql:
            return Result(rows=list(checks))
        if "GROUP BY table_name" in sql:
            return Result(rows=list((rejects_by_table or {}).items()))
        if "staging_rejects" in sql:
            return Result(rows=list(rejects))
        raise AssertionError(f"unexpected statement {sql}")

    return FakeCursor(respond)


def test_count_rows_absent_tables_are_none():
    cursor = warehouse(["songplays", "users", "other"], {"songplays": 12, "users": 3})
    counts = count_rows(cursor, "public", ["songplays", "users", "time"])
    assert counts == {"songplays": 12, "users": 3, "time": None}
    assert cursor.executed[0][1] == {"schema": "public"}
    assert any(s.endswith('SELECT COUNT(*) FROM "public"."songplays"') for s in cursor.statements)


DAY = datetime(2018, 11, 2, tzinfo=UTC)
INTERVAL = {"interval_start": datetime(2018, 11, 2), "interval_end": datetime(2018, 11, 3)}
SNAPSHOT = {
    "rows": {"staging_events": 0, "staging_songs": 5, "songplays": 2, "users": None},
    "scopes": {"staging_events": "run", "staging_songs": "table", "songplays": "interval",
               "users": "table"},
}  # fmt: skip


def test_every_table_has_a_scope_and_each_scope_filters_on_its_column():
    assert set(TABLE_SCOPES) == set(REPORT_TABLES)
    assert TABLE_SCOPES["staging_events"] is RUN_ROWS
    assert TABLE_SCOPES["songplays"] is TABLE_SCOPES["time"] is INTERVAL_ROWS
    shared = {"users", "songs", "artists", "staging_songs"}
    assert {t for t, s in TABLE_SCOPES.items() if s is WHOLE_TABLE} == shared
    for scope in (RUN_ROWS, INTERVAL_ROWS, WHOLE_TABLE):
        query = read_sql(scope.sql)
        assert "{{ table }}" in query and "{table}" not in query
        for parameter in scope.parameters:
            assert f"%({parameter})s" in query
        if scope.column:
            assert f"WHERE {scope.column} " in query
        else:
            assert "WHERE" not in query
    assert "shared by runs" in WHOLE_TABLE.label and "other runs" in WHOLE_TABLE.note


def test_scope_parameters_are_naive_utc_and_an_unknown_interval_is_left_out():
    from sparkify.warehouse import interval_parameters

    params = scope_parameters(RUN_ID, DAY, DAY + timedelta(days=1))
    assert params == {"run_id": RUN_ID, **INTERVAL}
    assert INTERVAL.items() <= interval_parameters(DAY, DAY + timedelta(days=1)).items()
    assert scope_parameters(None, None, None) == {}
    assert scope_parameters(RUN_ID, DAY, DAY) == {"run_id": RUN_ID}  # empty interval


def test_snapshot_rows_counts_each_table_in_its_scope_with_bind_parameters():
    cursor = warehouse(REPORT_TABLES, dict.fromkeys(REPORT_TABLES, 4))
    snapshot = snapshot_rows(cursor, parameters={"run_id": RUN_ID, **INTERVAL})
    assert snapshot.rows == dict.fromkeys(REPORT_TABLES, 4)
    assert snapshot.scopes == {t: TABLE_SCOPES[t].key for t in REPORT_TABLES}
    counted = {
        re.search(r'FROM "public"\."(\w+)"', sql).group(1): (sql, params)
        for sql, params in cursor.executed
        if "COUNT(*)" in sql
    }
    sql, params = counted["staging_events"]
    assert sql.endswith('FROM "public"."staging_events" WHERE run_id = %(run_id)s')
    assert params == {"run_id": RUN_ID}
    for table in ("songplays", "time"):
        sql, params = counted[table]
        assert "start_time >= %(interval_start)s AND start_time < %(interval_end)s" in sql
        assert params == INTERVAL
    for table in ("users", "songs", "artists", "staging_songs"):
        sql, params = counted[table]
        assert sql.endswith(f'SELECT COUNT(*) FROM "public"."{table}"') and params == {}
    assert RUN_ID not in " ".join(s for s, _ in cursor.executed)  # a value, never SQL text
    assert json.loads(json.dumps(snapshot.to_xcom())) == snapshot.to_xcom()
    assert RowSnapshot.from_xcom(snapshot.to_xcom()) == snapshot


def test_snapshot_rows_leaves_out_what_it_cannot_scope_and_absent_tables_are_none():
    """No run or interval in the context: the scoped tables are not counted (unknown);
    a staging_events created before run_id existed holds none of this run's rows."""
    cursor = warehouse(["staging_events", "users", "songplays"], {"users": 3})
    tables = ["staging_events", "songplays", "time", "users", "songs"]
    snapshot = snapshot_rows(cursor, tables=tables)
    assert snapshot.rows == {"time": None, "users": 3, "songs": None}  # absent in any scope
    cursor = warehouse(["staging_events"], {}, columns={"staging_events": ("ts",)})
    snapshot = snapshot_rows(cursor, tables=["staging_events"], parameters={"run_id": "r"})
    assert snapshot.rows == {"staging_events": 0} and snapshot.scopes == {"staging_events": "run"}
    assert not any("COUNT(*)" in s for s in cursor.statements)


def test_a_snapshot_from_an_older_flat_xcom_counted_whole_tables():
    old = RowSnapshot.from_xcom({"songplays": 2, "users": None})
    assert old.count("users", WHOLE_TABLE) == (None, True)  # absent
    assert old.count("songplays", INTERVAL_ROWS) == (None, False)  # another scope: unknown
    assert RowSnapshot.from_xcom(None) is None and RowSnapshot.from_xcom({}) is None
    assert RowSnapshot.from_xcom("not a snapshot") is None
    assert RowSnapshot.from_xcom({"users": "seven"}) is None


def test_build_report_reads_this_runs_checks_latest_attempt_and_rejects():
    present = [*REPORT_TABLES, "staging_rejects", "data_quality_results"]
    cursor = warehouse(
        present,
        dict.fromkeys(REPORT_TABLES, 7),
        checks=[("time_hour_in_range", "time", False, "3", "== 0")],
        rejects_by_table={"staging_events": 25},
        rejects=[("staging_events", "k.json", 1, "bad")],
    )
    report = build_report(
        cursor, dag_id="d", run_id=RUN_ID, interval_start=DAY,
        interval_end=DAY + timedelta(days=1), before=SNAPSHOT, max_rejects_shown=1,
    )  # fmt: skip
    assert [(t.table, t.scope, t.before, t.after) for t in report.tables][:4] == [
        ("staging_events", RUN_ROWS, 0, 7),
        ("staging_songs", WHOLE_TABLE, 5, 7),
        ("songplays", INTERVAL_ROWS, 2, 7),
        ("users", WHOLE_TABLE, None, 7),
    ]
    assert [t.before_known for t in report.tables] == [True] * 4 + [False] * 3
    assert report.checks == (CheckRow("time_hour_in_range", "time", False, "3", "== 0"),)
    assert report.rejects_total == 25 and len(report.rejects) == 1
    check_sql, check_params = next((s, p) for s, p in cursor.executed if "data_quality" in s)
    assert "MAX(checked_at)" in check_sql and check_params == {"run_id": RUN_ID}
    [first_rejects] = [s for s, p in cursor.executed if p == {"run_id": RUN_ID, "limit": 1}]
    assert first_rejects.rstrip().endswith("LIMIT %(limit)s")
    # Values travel as bind parameters only (table names are validated identifiers).
    assert all(
        p in (None, {}, {"run_id": RUN_ID}, {"schema": "public"}, {"run_id": RUN_ID, "limit": 1},
              INTERVAL)
        or set(p) == {"schema", "tables"}
        for _, p in cursor.executed
    )  # fmt: skip
    markdown = render_markdown(report)
    assert md_row(markdown, "`staging_events`")[1:] == ["this run's rows", "0", "7", "+7"]
    assert md_row(markdown, "`songplays`")[1:] == ["the run's interval", "2", "7", "+5"]
    assert md_row(markdown, "`users`")[1:] == ["whole table (shared by runs)", "absent", "7", "+7"]
    assert md_row(markdown, "`time`")[1:] == ["the run's interval", "unknown", "7", ""]


def test_build_report_first_run_without_result_tables():
    cursor = warehouse(["songplays"], {"songplays": 0})
    before = {"rows": {"songplays": None, "users": None},
              "scopes": {"songplays": "interval", "users": "table"}}  # fmt: skip
    report = build_report(
        cursor, dag_id="d", run_id="r", interval_start=DAY,
        interval_end=DAY + timedelta(days=1), before=before, tables=["songplays", "users"],
    )  # fmt: skip
    assert [(t.before, t.after) for t in report.tables] == [(None, 0), (None, None)]
    assert report.checks == () and report.rejects_total == 0
    assert not any("data_quality_results" in s for s in cursor.statements)
    markdown = render_markdown(report)
    assert md_row(markdown, "`users`")[2:] == ["absent", "absent", ""]
    assert md_row(markdown, "`songplays`")[2:] == ["absent", "0", "0"]
    assert "No check results for this run" in markdown


def test_build_report_without_warehouse_says_so():
    report = build_report(
        None, dag_id="d", run_id="r", interval_start=None, interval_end=None, before=None,
        warehouse_error="cannot connect", tables=["songplays"],
    )  # fmt: skip
    markdown = render_markdown(report)
    assert md_row(markdown, "`songplays`")[1:] == ["the run's interval", "unknown", "unknown", ""]
    assert "not readable at report time: cannot connect" in markdown
    assert "unknown (the warehouse could not be read)" in render_html(report)


# ----------------------------------------------------------------------------- rendering


def test_markdown_has_every_table_count_check_reject_and_task():
    markdown = render_markdown(sample_report())
    assert markdown.startswith(f"# Run report: sparkify_etl / {RUN_ID}\n")
    assert "- **Data interval:** 2018-11-02 00:00:00 UTC to 2018-11-03 00:00:00 UTC" in markdown
    assert "- **Outcome:** FAILED - failed check(s): time\\_hour\\_in\\_range" not in markdown
    assert "- **Outcome:** FAILED - failed check(s): time_hour_in_range" in markdown
    assert "- **Quality checks:** 1 of 2 passed" in markdown
    assert "- **Rejected records:** 5 (staging_events 5)" in markdown

    assert md_row(markdown, "`staging_events`")[1:] == ["this run's rows", "120", "131", "+11"]
    assert md_row(markdown, "`songplays`")[1:] == ["the run's interval", "1,000", "1,125", "+125"]
    assert md_row(markdown, "`users`")[1:] == ["whole table (shared by runs)", "40", "40", "0"]
    assert md_row(markdown, "`time`")[2:] == ["absent", "97", "+97"]
    assert md_row(markdown, "`songs`")[2:] == ["90", "80", "-10"]
    assert "| table | counts | before | after | change |" in markdown

    assert md_row(markdown, "`songplays_has_rows`") == [
        "`songplays_has_rows`", "`songplays`", "passed", "`1125`", "`>= 1`",
    ]  # fmt: skip
    assert md_row(markdown, "`time_hour_in_range`") == [
        "`time_hour_in_range`", "`time`", "**FAILED**", "`3`", "`== 0`",
    ]  # fmt: skip

    assert "## Rejected records: 5 (staging_events 5)" in markdown
    assert "## Data quality checks: 1 of 2 passed" in markdown
    assert (
        "- **whole table (shared by runs)** (users, songs): the whole table, which every run "
        "rewrites: with runs overlapping, its change may include other runs' writes."
    ) in markdown
    assert "- **this run's rows** (staging_events): rows with this run's run_id;" in markdown
    assert "- **the run's interval** (songplays, time): rows whose start_time lies" in markdown
    assert "The first 2 of 5:" in markdown
    reject = next(line for line in markdown.splitlines() if "2018-11-02-events.json" in line)
    assert reject == (
        "| `staging_events` | `log_data/2018/11/2018-11-02-events.json` | 7 | `bad JSON` |"
    )

    assert md_row(markdown, "`stage_events`")[1:] == [
        "success", "2024-05-01 12:00:03 UTC", "2024-05-01 12:01:18 UTC", "1 min 15 s", "2",
    ]  # fmt: skip
    assert md_row(markdown, "`load_songplays_fact_table`")[4] == "2.5 s"
    assert md_row(markdown, "`begin_execution`")[4] == "0.0 s"
    assert md_row(markdown, "`write_run_report`")[1:] == [
        "running", "2024-05-01 12:00:20 UTC", "-", "-", "1",
    ]  # fmt: skip
    assert md_row(markdown, "`stop_execution`")[1] == "no status"


def test_markdown_keeps_html_and_pipes_inside_code_spans():
    markdown = render_markdown(sample_report())
    line = next(line for line in markdown.splitlines() if "| 9 |" in line)
    # Four cells: the pipe of the value is escaped, the script is a code span.
    assert len(re.split(r"(?<!\\)\|", line)[1:-1]) == 4
    assert f"`value {SCRIPT} \\| x`" in line
    outside_code = re.sub(r"`[^`]*`", "", markdown)
    assert "<script>" not in outside_code


def test_md_code_fences_backticks():
    assert md_code("a`b") == "``a`b``"
    assert md_code("`x`") == "`` `x` ``"
    assert md_code("") == ""
    assert md_code("two\nlines") == "`two lines`"
    assert md_code("x" * 500).endswith("…`") and len(md_code("x" * 500)) == 202


def test_html_escapes_every_value():
    report = sample_report(
        run_id=f"manual__{SCRIPT}",
        checks=(CheckRow(f"c{SCRIPT}", "time", False, SCRIPT, "<= 0 & >= 0"),),
        tasks=task_timings([ti(f"t{SCRIPT}", State.FAILED, 0, 1)]),
    )
    page = render_html(report)
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    assert "&lt;= 0 &amp; &gt;= 0" in page
    assert page.count("<table>") == 4 and page.rstrip().endswith("</html>")


def test_html_has_every_table_check_reject_and_task():
    page = render_html(sample_report())
    for table, scope, before, after, change in [
        ("staging_events", "this run&#39;s rows", "120", "131", "+11"),
        ("songplays", "the run&#39;s interval", "1,000", "1,125", "+125"),
        ("time", "the run&#39;s interval", "absent", "97", "+97"),
        ("songs", "whole table (shared by runs)", "90", "80", "-10"),
    ]:
        assert (
            f'<tr><td><code>{table}</code></td><td>{scope}</td><td class="num">{before}</td>'
            f'<td class="num">{after}</td><td class="num">{change}</td></tr>'
        ) in page
    assert "<li><strong>whole table (shared by runs)</strong> (users, songs): " in page
    assert '<td class="failed">FAILED</td><td><code>3</code></td><td><code>== 0</code></td>' in page
    assert '<td class="passed">passed</td><td><code>1125</code></td>' in page
    assert "<code>log_data/2018/11/2018-11-02-events.json</code>" in page
    assert '<td class="num">7</td><td><code>bad JSON</code></td>' in page
    assert "<p>The first 2 of 5:</p>" in page
    assert "<td><code>stage_events</code></td><td>success</td>" in page
    assert '<td class="num">1 min 15 s</td><td class="num">2</td>' in page
    assert 'class="failed">FAILED - failed check(s): time_hour_in_range</span>' in page


def test_outcome():
    assert sample_report(checks=(), rejects=()).outcome() == "succeeded"
    failed = sample_report(checks=(), tasks=task_timings(
        [ti("a", State.FAILED, 0, 1), ti("b", State.UPSTREAM_FAILED)]
    ))  # fmt: skip
    assert failed.outcome() == "FAILED - failed task(s): a; 1 task(s) not run (upstream failed)"
    assert "No check results for this run" in render_markdown(failed)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(None, "-"), (0.04, "0.0 s"), (12.34, "12.3 s"), (65, "1 min 05 s"), (3725, "1 h 02 min")],
)
def test_format_duration(seconds, shown):
    assert format_duration(seconds) == shown
