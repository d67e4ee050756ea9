"""Unit tests for sparkify.alerts: the failure callback says it clearly, stores one object
per failed try (file:// URLs here; S3 in tests/operators/test_run_report_on_stack.py),
never raises."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import SimpleNamespace

import pendulum
import pytest
from airflow.exceptions import AirflowException

from sparkify.alerts import alert_on_failure, build_alert, first_line

RUN_ID = "scheduled__2018-11-02T00:00:00+00:00"
SAFE_RUN_ID = "scheduled__2018-11-02T00_00_00_00_00"
LOG_URL = "http://localhost:8080/dags/sparkify_etl/grid?task_id=stage_events"
LOGGER = "tests.alerts.task"


def context(**overrides) -> dict:
    ti = SimpleNamespace(
        dag_id="sparkify_etl",
        task_id="stage_events",
        run_id=RUN_ID,
        try_number=4,
        max_tries=3,
        log_url=LOG_URL,
        log=logging.getLogger(LOGGER),
    )
    values = {
        "ti": ti,
        "run_id": RUN_ID,
        "data_interval_start": pendulum.datetime(2018, 11, 2, tz="UTC"),
        "data_interval_end": pendulum.datetime(2018, 11, 3, tz="UTC"),
        "exception": AirflowException("data interval 2018-11-02: missing log file(s)\nTraceback"),
    }
    values.update(overrides)
    return values


@pytest.fixture
def reports(tmp_path, monkeypatch) -> Path:
    """The Variable sparkify_reports_url aimed at a folder of the test."""
    folder = tmp_path / "reports"
    monkeypatch.setenv("AIRFLOW_VAR_SPARKIFY_REPORTS_URL", folder.as_uri())
    return folder


@pytest.fixture
def environ(reports) -> dict[str, str]:
    """The environment the callback reads SPARKIFY_ALERT_CONN_ID from (none set)."""
    return {}


def stored_alerts(reports: Path) -> dict[str, str]:
    """Every stored alert: path under <reports>/alerts -> text."""
    folder = reports / "alerts"
    return {
        path.relative_to(folder).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(folder.rglob("*.txt"))
    }


def alerts_text(reports: Path) -> str:
    return "".join(stored_alerts(reports).values())


def test_alert_goes_to_the_task_log_and_its_own_object(reports, environ, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    alert_on_failure(context(), environ)

    [(name, text)] = stored_alerts(reports).items()
    assert name == f"sparkify_etl/{SAFE_RUN_ID}/stage_events.try4.txt"
    assert text.splitlines()[:5] == [
        "Sparkify task failed: sparkify_etl.stage_events (try 4 of 4)",
        f"  run:           {RUN_ID}",
        "  data interval: 2018-11-02T00:00:00+00:00 to 2018-11-03T00:00:00+00:00",
        "  error:         AirflowException: data interval 2018-11-02: missing log file(s)",
        f"  log:           {LOG_URL}",
    ]
    assert "Traceback" not in text and text.endswith("\n")
    errors = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].getMessage() == text.strip()
    url = (reports / "alerts" / name).as_uri()
    assert any(r.getMessage() == f"Alert stored at {url}" for r in caplog.records)


def test_each_failed_try_is_its_own_object(reports, environ):
    first = context()
    first["ti"].try_number = 1
    alert_on_failure(first, environ)
    alert_on_failure(context(exception="Task received SIGTERM signal"), environ)
    alerts = stored_alerts(reports)
    assert sorted(alerts) == [
        f"sparkify_etl/{SAFE_RUN_ID}/stage_events.try1.txt",
        f"sparkify_etl/{SAFE_RUN_ID}/stage_events.try4.txt",
    ]
    assert "  error:         Task received SIGTERM signal" in alerts[sorted(alerts)[1]]


def test_without_the_variable_the_alert_is_only_logged(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("AIRFLOW_VAR_SPARKIFY_REPORTS_URL", raising=False)
    caplog.set_level(logging.INFO, logger=LOGGER)
    alert_on_failure(context(), {})
    assert any(r.levelno == logging.ERROR and "Sparkify task failed" in r.getMessage()
               for r in caplog.records)  # fmt: skip
    assert any("sparkify_reports_url is not set" in r.getMessage() for r in caplog.records)
    assert list(tmp_path.iterdir()) == []


class Exploding:
    """Every attribute access raises, as does str()."""

    def __getattr__(self, name):
        raise RuntimeError(f"no {name}")

    def __str__(self):
        raise RuntimeError("no str")


@pytest.mark.parametrize(
    "broken",
    [
        None,
        {},
        "not a context",
        {"ti": Exploding(), "exception": Exploding(), "data_interval_start": Exploding()},
        {"ti": SimpleNamespace(task_id="t"), "dag": SimpleNamespace(dag_id="d")},
        {"task_instance": SimpleNamespace(dag_id="d", task_id="t", try_number="x")},
    ],
    ids=["none", "empty", "string", "exploding", "partial", "task_instance_key"],
)
def test_a_broken_context_still_gives_an_alert_and_never_raises(reports, environ, broken):
    alert_on_failure(broken, environ)
    text = alerts_text(reports)
    assert text.startswith("Sparkify task failed: ")
    assert "unknown" in text


def test_partial_context_keeps_what_it_can():
    alert = build_alert({"ti": SimpleNamespace(task_id="t"), "dag": SimpleNamespace(dag_id="d")})
    assert (alert.dag_id, alert.task_id, alert.run_id, alert.log_url) == (
        "d", "t", "unknown", "unknown",
    )  # fmt: skip
    assert alert.error == "no exception given (see the log)"


def test_an_unwritable_store_does_not_raise(tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("AIRFLOW_VAR_SPARKIFY_REPORTS_URL", (blocker / "reports").as_uri())
    caplog.set_level(logging.INFO, logger=LOGGER)
    alert_on_failure(context(), {})
    assert any("Could not store the alert" in r.getMessage() for r in caplog.records)


def test_first_line():
    assert first_line(ValueError("bad\nmore")) == "ValueError: bad"
    assert first_line(ValueError("")) == "ValueError"
    assert first_line("  plain text\nmore ") == "plain text"
    assert first_line(None) == "no exception given (see the log)"


# ----------------------------------------------------------------------------- webhook


class Hook(BaseHTTPRequestHandler):
    received: list[tuple[str, dict, dict]] = []
    status = 200

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append((self.path, dict(self.headers), json.loads(body)))
        self.send_response(Hook.status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook(monkeypatch) -> Iterator[str]:
    """A local HTTP endpoint behind Airflow connection ``sparkify_test_alerts``."""
    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Hook.received, Hook.status = [], 200
    connection = {
        "conn_type": "http",
        "host": "127.0.0.1",
        "port": server.server_port,
        "extra": {"endpoint": "/hooks/sparkify"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_SPARKIFY_TEST_ALERTS", json.dumps(connection))
    yield "sparkify_test_alerts"
    server.shutdown()
    server.server_close()


def test_the_alert_is_posted_as_json_to_the_named_connection(reports, environ, webhook):
    alert_on_failure(context(), {**environ, "SPARKIFY_ALERT_CONN_ID": webhook})
    [(path, headers, payload)] = Hook.received
    assert path == "/hooks/sparkify"
    assert headers["Content-Type"] == "application/json"
    assert payload["dag_id"] == "sparkify_etl" and payload["task_id"] == "stage_events"
    assert payload["try_number"] == "4 of 4" and payload["log_url"] == LOG_URL
    assert payload["data_interval_start"] == "2018-11-02T00:00:00+00:00"
    assert payload["error"].startswith("AirflowException: data interval 2018-11-02")
    assert payload["text"].startswith("Sparkify task failed: sparkify_etl.stage_events")
    assert "Sparkify task failed" in alerts_text(reports)  # the store still gets it


def test_a_failing_webhook_is_logged_not_raised(environ, webhook, caplog):
    Hook.status = 500
    caplog.set_level(logging.INFO, logger=LOGGER)
    alert_on_failure(context(), {**environ, "SPARKIFY_ALERT_CONN_ID": webhook})
    assert len(Hook.received) == 1
    assert any("Could not post the alert" in r.getMessage() for r in caplog.records)


def test_an_unreachable_webhook_is_logged_not_raised(environ, monkeypatch, caplog):
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv(
        "AIRFLOW_CONN_SPARKIFY_TEST_DOWN",
        json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": port}),
    )
    caplog.set_level(logging.INFO, logger=LOGGER)
    alert_on_failure(context(), {**environ, "SPARKIFY_ALERT_CONN_ID": "sparkify_test_down"})
    assert any("Could not post the alert" in r.getMessage() for r in caplog.records)


def test_a_missing_connection_is_logged_not_raised(reports, environ, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    alert_on_failure(context(), {**environ, "SPARKIFY_ALERT_CONN_ID": "sparkify_no_such_conn_x"})
    assert any("names no Airflow connection" in r.getMessage() for r in caplog.records)
    assert "Sparkify task failed" in alerts_text(reports)


def test_known_secrets_are_masked_in_the_stored_alert(reports, environ):
    from airflow.utils.log.secrets_masker import mask_secret

    mask_secret("alert-secret-Zq81x")
    alert_on_failure(context(exception=ValueError("login failed for alert-secret-Zq81x")), environ)
    text = alerts_text(reports)
    assert "alert-secret-Zq81x" not in text and "login failed for ***" in text


# ----------------------------------------------------------------------------- S3


@pytest.mark.stack
def test_each_failed_try_is_an_object_in_s3(monkeypatch, caplog):
    """On the local S3 API, through the connection aws-redshift, in a bucket of its own."""
    from airflow.io import store

    from tests.stack_support import S3_ENDPOINT, fresh_bucket

    bucket = "sparkify-test-alerts"
    client = fresh_bucket(bucket)
    connection = {
        "conn_type": "aws",
        "login": "local-access-key",
        "password": "local-secret-key",
        "extra": {"endpoint_url": S3_ENDPOINT, "region_name": "us-east-1"},
    }
    # Airflow looks connection "aws-redshift" up as AIRFLOW_CONN_AWS-REDSHIFT ("-" kept).
    monkeypatch.setenv("AIRFLOW_CONN_AWS-REDSHIFT", json.dumps(connection))
    monkeypatch.setattr(store, "_STORE_CACHE", {})  # attach anew: this test's connection
    monkeypatch.setenv("AIRFLOW_VAR_SPARKIFY_REPORTS_URL", f"s3://{bucket}/reports")
    caplog.set_level(logging.INFO, logger=LOGGER)
    for number in (1, 2):
        failure = context(exception=ValueError(f"try {number} failed"))
        failure["ti"].try_number = number
        alert_on_failure(failure, {})

    prefix = f"reports/alerts/sparkify_etl/{SAFE_RUN_ID}/"
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == [f"{prefix}stage_events.try1.txt", f"{prefix}stage_events.try2.txt"]
    body = client.get_object(Bucket=bucket, Key=keys[1])["Body"].read().decode("utf-8")
    assert body.startswith("Sparkify task failed: sparkify_etl.stage_events (try 2 of 4)\n")
    assert "  error:         ValueError: try 2 failed" in body
    assert f"Alert stored at s3://{bucket}/{keys[1]}" in [r.getMessage() for r in caplog.records]
