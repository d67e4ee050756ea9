"""Unit tests for sparkify.report_store: names, URLs, files written and read back through
ObjectStoragePath with file:// URLs (the S3 path is in tests/operators/*_on_stack)."""

from __future__ import annotations

import os
import time

import pytest

from sparkify.report_store import (
    alert_url,
    configured_reports_url,
    join_url,
    latest_report,
    normalize_url,
    read_text,
    report_urls,
    safe_file_name,
    storage_path,
    write_text,
)

RUN_ID = "scheduled__2018-11-02T00:00:00+00:00"


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        (RUN_ID, "scheduled__2018-11-02T00_00_00_00_00"),
        ("manual__2024-05-01T12:00:00.123456+00:00", "manual__2024-05-01T12_00_00.123456_00_00"),
        ("../../etc/passwd", "_.._etc_passwd"),
        ("..", "_"),
        ("", "_"),
        ("a b/c\\d", "a_b_c_d"),
    ],
)
def test_safe_file_name(name, safe):
    assert safe_file_name(name) == safe
    assert "/" not in safe and not safe.startswith(".")


def test_urls_of_reports_and_alerts():
    assert report_urls("s3://b/reports", "sparkify_etl", RUN_ID) == (
        "s3://b/reports/sparkify_etl/scheduled__2018-11-02T00_00_00_00_00.md",
        "s3://b/reports/sparkify_etl/scheduled__2018-11-02T00_00_00_00_00.html",
    )
    assert alert_url("s3://b/reports/", "sparkify_etl", RUN_ID, "stage_events", 4) == (
        "s3://b/reports/alerts/sparkify_etl/scheduled__2018-11-02T00_00_00_00_00/"
        "stage_events.try4.txt"
    )
    # A hostile id stays one name under its folder.
    assert join_url("s3://b/r", "../x", "a/b") == "s3://b/r/_x/a_b"


def test_a_plain_path_is_a_file_url(tmp_path):
    assert normalize_url(str(tmp_path) + "/") == tmp_path.as_uri()
    assert normalize_url("file:///tmp/reports/") == "file:///tmp/reports"
    with pytest.raises(ValueError, match="empty"):
        normalize_url("  ")


def test_write_then_read_a_file_url(tmp_path):
    url = f"{tmp_path.as_uri()}/a/b/report.md"
    assert write_text(url, "héllo <b>\n") == url
    assert (tmp_path / "a" / "b" / "report.md").read_text(encoding="utf-8") == "héllo <b>\n"
    assert read_text(url) == "héllo <b>\n"
    write_text(url, "replaced")
    assert read_text(url) == "replaced"
    assert os.listdir(tmp_path / "a" / "b") == ["report.md"]  # no temporary left


def test_file_urls_need_no_connection(tmp_path):
    path = storage_path(tmp_path.as_uri(), conn_id="no_such_connection_x")
    assert path.protocol == "file" and path.storage_options.get("conn_id") is None


def test_latest_report_is_the_newest_markdown(tmp_path):
    folder = tmp_path / "sparkify_etl"
    folder.mkdir()
    for age, name in ((30, "a.md"), (10, "b.md"), (20, "c.md"), (0, "d.html")):
        path = folder / name
        path.write_text(name)
        moment = time.time() - age
        os.utime(path, (moment, moment))
    base = tmp_path.as_uri()
    assert latest_report(base, "sparkify_etl") == (folder / "b.md").as_uri()
    assert latest_report(base, "sparkify_etl", since=time.time() - 5) is None
    assert latest_report(base, "sparkify_etl", since=time.time() - 15) == (folder / "b.md").as_uri()
    assert latest_report(base, "other_dag") is None


def test_configured_reports_url_reads_the_variable(monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_SPARKIFY_REPORTS_URL", " s3://b/reports ")
    assert configured_reports_url() == "s3://b/reports"
    monkeypatch.setenv("AIRFLOW_VAR_SPARKIFY_REPORTS_URL", "")
    assert configured_reports_url("file:///fallback") == "file:///fallback"
