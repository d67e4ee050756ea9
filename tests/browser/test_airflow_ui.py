"""Airflow's UI in a real browser: log in, find sparkify_etl, unpause it, trigger a run.

Debian's Chromium (``/usr/bin/chromium``, installed by ``make browser``) runs headless
under Playwright; no browser is downloaded. The webserver and scheduler are started by
``dev.local_stack.airflow_servers`` on free ports, with a private ``AIRFLOW_HOME``
(its own SQLite metadata DB), so a developer's ``make airflow`` on 8080 is left alone;
the warehouse connections point at a throwaway database and bucket holding a generated
day of data. The run is a real scheduler run (SequentialExecutor: a process per task);
the test waits for it through the REST API and saves a screenshot of the graph view.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
import requests

from dev.local_stack import airflow_servers
from dev.sample_data import SampleSpec, generate
from tests.stack_support import (
    connect,
    connection_environment,
    count_rows,
    fresh_bucket,
    fresh_database,
    upload_folder,
)

pytestmark = [pytest.mark.stack, pytest.mark.browser]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Debian's package; SPARKIFY_CHROMIUM names another Chromium binary.
CHROMIUM = Path(os.environ.get("SPARKIFY_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
HOME = PROJECT_ROOT / ".local" / "test-airflow-ui"
SCREENSHOT = PROJECT_ROOT / ".local" / "screenshots" / "sparkify_etl_graph.png"
DAG_ID = "sparkify_etl"
DATABASE = "sparkify_ui_test"
BUCKET = "sparkify-ui-test"
DAY = date(2018, 11, 1)
# A manual run's data interval is the schedule period that *ends* at its logical date:
# logical date 2018-11-02 00:00 UTC gives the interval 2018-11-01 .. 2018-11-02 (DAY).
LOGICAL_DATE = "2018-11-02T00:00:00+00:00"
USERNAME, PASSWORD = airflow_servers.ADMIN_USERNAME, airflow_servers.ADMIN_PASSWORD
RUN_TIMEOUT = 300  # seconds; the run takes about two minutes


@dataclass(frozen=True)
class AirflowUI:
    url: str
    env: dict[str, str]

    def api(self, path: str, **params) -> dict:
        response = requests.get(
            f"{self.url}/api/v1/{path}", params=params, auth=(USERNAME, PASSWORD), timeout=10
        )
        response.raise_for_status()
        return response.json()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def chromium() -> Path:
    """Debian's Chromium and Playwright: a skip with the reason, a failure under `make test`."""
    required = os.environ.get("SPARKIFY_REQUIRE_STACK") == "1"
    problem = None
    if not CHROMIUM.exists():
        problem = f"{CHROMIUM} is missing: `make browser` installs Debian's chromium (as root)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "playwright is not installed: `make venv` installs requirements.lock"
    if problem:
        if required:
            pytest.fail(f"{problem} (SPARKIFY_REQUIRE_STACK=1: the browser test must run)")
        pytest.skip(problem)
    return CHROMIUM


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> str:
    """A throwaway database and bucket; the bucket holds one generated day (DAY)."""
    folder = tmp_path_factory.mktemp("ui-sample")
    generate(folder, SampleSpec(start=DAY, days=1, songs=60, seed=11))
    upload_folder(fresh_bucket(BUCKET), BUCKET, folder)
    return fresh_database(DATABASE)


@pytest.fixture(scope="module")
def airflow_ui(chromium, warehouse) -> Iterator[AirflowUI]:
    """Webserver + scheduler on free ports with a fresh private metadata DB; stopped after."""
    airflow_servers.stop(HOME)  # left over by an interrupted run
    shutil.rmtree(HOME, ignore_errors=True)
    HOME.mkdir(parents=True)
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "SequentialExecutor",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        # Only the run the test triggers: unpausing must not start the latest daily run.
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        # The trigger button offers the form with the logical date.
        "AIRFLOW__WEBSERVER__SHOW_TRIGGER_FORM_IF_NO_PARAMS": "True",
        # Parse the DAG once, not every 30 s: task processes need the CPU more.
        "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "600",
        "AIRFLOW__API__AUTH_BACKENDS": (
            "airflow.api.auth.backend.basic_auth,airflow.api.auth.backend.session"
        ),
        **connection_environment(warehouse, BUCKET),
    }
    env.setdefault("AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES", "airflow.* astro.*")
    migrate = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert migrate.returncode == 0, migrate.stdout[-2000:] + migrate.stderr[-2000:]
    port = free_port()
    try:
        airflow_servers.start(env, port=port, log_server_port=free_port(), timeout=240)
        yield AirflowUI(f"http://127.0.0.1:{port}", env)
    finally:
        airflow_servers.stop(HOME)


@pytest.fixture
def page(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True
        )
        context = browser.new_context(viewport={"width": 1600, "height": 1000})
        context.set_default_timeout(30_000)
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


def find_dag(page, ui: AirflowUI, timeout: float = 120) -> None:
    """Search the DAG list until the scheduler has parsed sparkify_etl, then open it."""
    link = page.locator(f'a[href*="/dags/{DAG_ID}/grid"]').filter(has_text=DAG_ID)
    deadline = time.monotonic() + timeout
    while True:
        page.fill("#dag_query", DAG_ID)
        page.press("#dag_query", "Enter")
        page.wait_for_load_state("networkidle")
        if link.count():
            break
        assert time.monotonic() < deadline, f"{DAG_ID} never showed up in the DAG list"
        time.sleep(2)
        page.goto(f"{ui.url}/home")
    link.first.click()
    page.wait_for_url(f"**/dags/{DAG_ID}/grid**")


def wait_for_run(ui: AirflowUI, timeout: float = RUN_TIMEOUT) -> dict:
    """The triggered run once it succeeded; fails at once when a task fails or retries."""
    deadline = time.monotonic() + timeout
    run: dict = {}
    while time.monotonic() < deadline:
        runs = ui.api(f"dags/{DAG_ID}/dagRuns")["dag_runs"]
        run = next((r for r in runs if r["logical_date"] == LOGICAL_DATE), {})
        if run.get("state") == "success":
            return run
        if run:
            instances = ui.api(f"dags/{DAG_ID}/dagRuns/{run['dag_run_id']}/taskInstances")
            bad = {
                ti["task_id"]: ti["state"]
                for ti in instances["task_instances"]
                if ti["state"] in ("failed", "up_for_retry", "upstream_failed")
            }
            assert not bad, f"run {run['dag_run_id']}: {bad}; logs in {HOME / 'logs'}"
            assert run["state"] != "failed", f"run {run['dag_run_id']} failed"
        time.sleep(3)
    raise AssertionError(f"no successful run at {LOGICAL_DATE} after {timeout} s: {run}")


def test_log_in_find_unpause_trigger_and_watch_the_run_succeed(page, airflow_ui, warehouse):
    ui = airflow_ui

    page.goto(f"{ui.url}/login/")
    page.fill("input[name=username]", USERNAME)
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#dag_query")  # the DAG list: logged in

    find_dag(page, ui)
    assert ui.api(f"dags/{DAG_ID}")["is_paused"] is True

    toggle = page.locator("#pause_resume")
    page.locator("label.switch-label", has=toggle).click()
    deadline = time.monotonic() + 30
    while ui.api(f"dags/{DAG_ID}")["is_paused"]:
        assert time.monotonic() < deadline, "the toggle did not unpause the DAG"
        time.sleep(0.5)

    page.click('a[aria-label="Trigger DAG"]')
    page.click("text=Trigger DAG w/ config")
    page.wait_for_url(f"**/dags/{DAG_ID}/trigger**")
    logical_date = page.locator("#execution_date")
    if not logical_date.is_visible():  # a DAG with params: the date sits in a folded section
        page.click("#generated_json_toggle")
        logical_date.wait_for(state="visible")
    logical_date.fill(LOGICAL_DATE)
    page.click("#trigger_form button[type=submit]")
    page.wait_for_url(f"**/dags/{DAG_ID}/grid**")

    run = wait_for_run(ui)
    assert run["run_type"] == "manual"
    assert run["data_interval_start"].startswith(DAY.isoformat())

    tasks = {task["task_id"] for task in ui.api(f"dags/{DAG_ID}/tasks")["tasks"]}
    instances = ui.api(f"dags/{DAG_ID}/dagRuns/{run['dag_run_id']}/taskInstances")
    states = {ti["task_id"]: ti["state"] for ti in instances["task_instances"]}
    assert set(states) == tasks and set(states.values()) == {"success"}, states
    assert count_rows(warehouse, "songplays") > 0
    with connect(warehouse) as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT check_name, passed FROM data_quality_results WHERE run_id = %s",
            (run["dag_run_id"],),
        )
        checks = dict(cursor.fetchall())
    assert checks and all(checks.values()), checks

    page.goto(f"{ui.url}/dags/{DAG_ID}/grid?dag_run_id={run['dag_run_id']}&tab=graph")
    nodes = page.locator(".react-flow__node")
    nodes.first.wait_for()
    deadline = time.monotonic() + 30
    while nodes.count() < len(tasks):
        assert time.monotonic() < deadline, f"the graph shows {nodes.count()} tasks"
        time.sleep(0.5)
    # The tasks only (no dataset nodes), fitted into the panel.
    datasets = page.locator("#show-datasets")
    if datasets.count() and datasets.is_checked():
        page.locator("label", has=datasets).click()
    page.locator(".react-flow__controls-fitview").click()
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(1000)  # fitView animates
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 10_000
