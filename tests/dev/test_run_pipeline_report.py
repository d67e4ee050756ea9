"""What `make run` prints at the end: the last run's Markdown report, read back from where
the tasks wrote it (a file:// folder here, and the local S3 API in a bucket of its own)."""

from __future__ import annotations

import json
import os
import time

import pytest

from dev.local_stack.run_pipeline import print_last_report, reports_url_setting
from sparkify.report_store import write_text

DAG_ID = "sparkify_etl"


def test_the_newest_report_since_the_start_is_printed(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AIRFLOW_VAR_SPARKIFY_REPORTS_URL", tmp_path.as_uri())
    folder = tmp_path / DAG_ID
    for age, name in ((60, "old"), (5, "new")):
        write_text(f"{folder.as_uri()}/{name}.md", f"# Run report: {name}\n")
        moment = time.time() - age
        os.utime(folder / f"{name}.md", (moment, moment))
    print_last_report(since=time.time() - 30)
    out = capsys.readouterr().out
    assert f"Run report of the last run ({folder.as_uri()}/new.md, and .html):" in out
    assert out.rstrip().endswith("# Run report: new")


def test_no_report_since_the_start_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AIRFLOW_VAR_SPARKIFY_REPORTS_URL", tmp_path.as_uri())
    print_last_report(since=time.time())
    assert (
        f"No run report was written under {tmp_path.as_uri()}/{DAG_ID}" in capsys.readouterr().out
    )


def test_the_reports_url_is_the_variable_else_airflow_settings(monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_SPARKIFY_REPORTS_URL", "s3://elsewhere/reports")
    assert reports_url_setting() == "s3://elsewhere/reports"
    monkeypatch.delenv("AIRFLOW_VAR_SPARKIFY_REPORTS_URL")
    # The metadata DB (after `make airflow-db`) or airflow_settings.yaml: the same value.
    assert reports_url_setting() == "s3://sparkify-local/reports"


@pytest.mark.stack
def test_the_report_is_read_back_from_the_local_s3_api(monkeypatch, capsys):
    from airflow.io import store

    from tests.stack_support import S3_ENDPOINT, fresh_bucket

    bucket = "sparkify-test-run-pipeline"
    fresh_bucket(bucket)
    connection = {
        "conn_type": "aws",
        "login": "local-access-key",
        "password": "local-secret-key",
        "extra": {"endpoint_url": S3_ENDPOINT, "region_name": "us-east-1"},
    }
    # Airflow looks connection "aws-redshift" up as AIRFLOW_CONN_AWS-REDSHIFT ("-" kept).
    monkeypatch.setenv("AIRFLOW_CONN_AWS-REDSHIFT", json.dumps(connection))
    monkeypatch.setattr(store, "_STORE_CACHE", {})
    monkeypatch.setenv("AIRFLOW_VAR_SPARKIFY_REPORTS_URL", f"s3://{bucket}/reports")
    began = time.time()
    url = write_text(f"s3://{bucket}/reports/{DAG_ID}/run_1.md", "# Run report: s3\n")
    print_last_report(since=began)
    out = capsys.readouterr().out
    assert f"Run report of the last run ({url}, and .html):" in out
    assert out.rstrip().endswith("# Run report: s3")
