"""Run ``sparkify_etl`` end to end on the local stack: what ``make run`` does.

1. picks the data: a folder in Sparkify's layout (``--data``) or a freshly generated
   sample (``.local/sample``), and the date range (``--start``/``--end``, both days
   included; by default the days of the folder's log files);
2. mirrors the folder into the local S3 API;
3. runs ``airflow dags backfill`` over the range (one run per day, in order);
4. checks every run succeeded, and prints rows per table and the quality checks.

Airflow's settings come from the environment (``scripts/airflow_env.sh``); the stack
and the metadata DB must be up (the Makefile sees to both).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path

from dev.local_stack.stack import HOST, PG_PORT, S3_BUCKET, S3_PORT, STATE_DIR

DAG_ID = "sparkify_etl"
_FINISHED_RUNS = re.compile(r"finished run \d+ of \d+")
_LOG_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})-events\.json$")


def log_days(folder: Path) -> list[date]:
    """The days of the folder's ``log_data`` files, sorted."""
    days = {
        date.fromisoformat(match[1])
        for path in (folder / "log_data").rglob("*-events.json")
        if (match := _LOG_NAME.search(path.name))
    }
    if not days:
        raise FileNotFoundError(f"{folder}/log_data holds no YYYY-MM-DD-events.json files")
    return sorted(days)


def backfill_command(start: date, end: date, dag_id: str = DAG_ID) -> list[str]:
    """``airflow dags backfill`` of [start, end], both days included, run anew."""
    airflow = [sys.executable, "-m", "airflow"]
    dates = ["-s", start.isoformat(), "-e", end.isoformat()]
    return [*airflow, "dags", "backfill", *dates, "--reset-dagruns", "-y", dag_id]


def backfill_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a backfill run in one process.

    Airflow's ``DebugExecutor`` runs each task inside the backfill's own process: no
    interpreter start-up per task (several seconds with astro-sdk's imports). A failed
    task fails its run at once (no 5-minute retry wait on a developer's machine).
    """
    env = dict(os.environ if environ is None else environ)
    env["AIRFLOW__CORE__EXECUTOR"] = "DebugExecutor"
    env.setdefault("AIRFLOW__DEBUG__FAIL_FAST", "False")
    return env


def run_backfill(
    start: date, end: date, log_path: Path, environ: dict[str, str] | None = None
) -> int:
    """Run the backfill, its output to ``log_path``, progress lines to stdout."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(
            backfill_command(start, end),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=backfill_environment(environ),
        )
        assert process.stdout is not None
        finished = None
        for line in process.stdout:
            log.write(line)
            progress = _FINISHED_RUNS.search(line)
            # One line per finished run (the backfill logs every scheduling pass), and errors.
            if (progress and progress[0] != finished) or " ERROR - " in line:
                finished = progress[0] if progress else finished
                print("  " + line.split("} ", 1)[-1].rstrip()[:200], flush=True)
        return process.wait()


def run_states(start: date, end: date, dag_id: str = DAG_ID) -> dict[date, str]:
    """State of each run of ``dag_id`` whose logical date is in [start, end]."""
    from airflow.models import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        runs = session.query(DagRun).filter(DagRun.dag_id == dag_id).all()
        states = {run.logical_date.date(): str(run.state) for run in runs}
    return {day: state for day, state in sorted(states.items()) if start <= day <= end}


def print_warehouse_summary(conn_id: str = "redshift") -> None:
    """Rows per table and the latest run's quality checks, as plain text."""
    from sparkify.run_report import count_rows
    from sparkify.sql import read_sql
    from sparkify.warehouse import transaction

    with transaction(conn_id) as cursor:
        print("\nRows per table:")
        for table, count in count_rows(cursor).items():
            print(f"  {table:16} {'absent' if count is None else f'{count:,}':>8}")
        # The latest attempt of the latest run (a re-run records its checks again).
        cursor.execute(read_sql("report_latest_checks"))
        rows = cursor.fetchall()
    if rows:
        failed = [row for row in rows if not row[3]]
        passed = len(rows) - len(failed)
        print(f"\nData quality checks of {rows[0][0]}: {passed} of {len(rows)} passed")
        for _, name, table, _, observed, expected in failed:
            print(f"  FAILED {name} on {table}: observed {observed}, expected {expected}")


def reports_url_setting() -> str | None:
    """Where the DAGs write reports: the Variable (environment or the metadata DB, applied
    by ``make airflow-db``), else its value in airflow_settings.yaml."""
    from sparkify.report_store import REPORTS_URL_VARIABLE, configured_reports_url

    with contextlib.suppress(Exception):
        if url := configured_reports_url():
            return url
    from dev.local_stack.airflow_settings import read_settings

    for entry in read_settings()["variables"]:
        if entry.get("variable_name") == REPORTS_URL_VARIABLE:
            return str(entry.get("variable_value") or "") or None
    return None


def print_last_report(since: float | None = None, dag_id: str = DAG_ID) -> None:
    """The newest run report of ``dag_id`` (written at or after ``since``), read back from
    object storage through the connection the tasks wrote it with."""
    from sparkify.report_store import STORAGE_CONN_ID, latest_report, read_text

    reports_url = reports_url_setting()
    if not reports_url:
        print("\nNo reports URL is configured (Variable sparkify_reports_url): no run report")
        return
    try:
        url = latest_report(reports_url, dag_id, since=since, conn_id=STORAGE_CONN_ID)
        text = None if url is None else read_text(url, STORAGE_CONN_ID)
    except Exception as exc:  # the report is a bonus here: say why it is missing
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        print(f"\nCould not read the run reports under {reports_url}: {reason}")
        return
    if url is None or text is None:
        print(f"\nNo run report was written under {reports_url}/{dag_id}")
        return
    print(f"\nRun report of the last run ({url}, and .html):\n")
    print(text.rstrip())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="folder with song_data/ and log_data/")
    parser.add_argument("--start", type=date.fromisoformat, help="first day (YYYY-MM-DD)")
    parser.add_argument("--end", type=date.fromisoformat, help="last day, included")
    args = parser.parse_args(argv)

    folder = args.data
    if folder is None:
        from dev.sample_data import generate

        folder = STATE_DIR / "sample"
        summary = generate(folder)
        print(
            f"Generated the sample in {folder}: {summary.song_files} song files, "
            f"{summary.log_files} daily logs, {summary.events:,} events"
        )
    folder = folder.resolve()
    days = log_days(folder)
    start, end = args.start or days[0], args.end or days[-1]
    if end < start:
        parser.error(f"--end {end} is before --start {start}")

    from dev.local_stack.seed_s3 import seed

    count = seed(folder, S3_BUCKET, f"http://{HOST}:{S3_PORT}")
    print(f"Uploaded {count} objects to s3://{S3_BUCKET} (S3 API at http://{HOST}:{S3_PORT})")

    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    log_path = STATE_DIR / "logs" / f"backfill-{stamp}.log"
    print(f"Backfilling {DAG_ID} from {start} to {end} (log: {log_path})")
    began, began_at = time.monotonic(), time.time()
    code = run_backfill(start, end, log_path)
    elapsed = time.monotonic() - began

    states = run_states(start, end)
    expected_days = (end - start).days + 1
    failed = {day: state for day, state in states.items() if state != "success"}
    print(
        f"\n{len(states) - len(failed)} of {expected_days} daily runs succeeded "
        f"in {elapsed:.0f} s (backfill exit code {code})"
    )
    for day, state in failed.items():
        print(f"  {day}: {state} (see {log_path})")
    print_warehouse_summary()

    # The backfill runs the days in order: the newest report is the range's last run.
    print_last_report(since=began_at)
    print(
        f"\nThe warehouse stays up: psql postgresql://sparkify:sparkify@{HOST}:{PG_PORT}/sparkify"
        " (`make stop` stops it)"
    )
    ok = code == 0 and not failed and len(states) == expected_days
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
