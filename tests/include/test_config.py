"""Unit tests for sparkify.config: which target a run uses."""

from __future__ import annotations

import pytest

from sparkify.config import LOCAL, REDSHIFT, TARGETS, Target, current_target


def test_default_target_is_local():
    target = current_target({})
    assert target == Target(
        name="local",
        dialect="postgres",
        warehouse_conn_id="sparkify_postgres",
        aws_conn_id="sparkify_s3_local",
        s3_bucket="sparkify-local",
        schema="public",
    )


def test_local_by_name():
    assert current_target({"SPARKIFY_TARGET": "local"}) is LOCAL


def test_redshift_target():
    target = current_target({"SPARKIFY_TARGET": "redshift"})
    assert target is REDSHIFT
    assert (target.dialect, target.warehouse_conn_id, target.aws_conn_id, target.s3_bucket) == (
        "redshift",
        "redshift",
        "aws-redshift",
        "udacity-dend",
    )


def test_bucket_override_changes_only_the_bucket():
    target = current_target({"SPARKIFY_TARGET": "redshift", "SPARKIFY_S3_BUCKET": "my-bucket"})
    assert target == Target(
        name="redshift",
        dialect="redshift",
        warehouse_conn_id="redshift",
        aws_conn_id="aws-redshift",
        s3_bucket="my-bucket",
    )
    # the module's targets are untouched
    assert REDSHIFT.s3_bucket == "udacity-dend"
    assert TARGETS["redshift"] is REDSHIFT


def test_empty_bucket_override_is_ignored():
    assert current_target({"SPARKIFY_S3_BUCKET": ""}).s3_bucket == "sparkify-local"


@pytest.mark.parametrize("name", ["prod", "Redshift", ""])
def test_unknown_target(name):
    with pytest.raises(ValueError) as info:
        current_target({"SPARKIFY_TARGET": name})
    assert str(info.value) == (
        f"SPARKIFY_TARGET={name!r} is not a known target; use one of ['local', 'redshift']"
    )


def test_reads_os_environ_by_default(monkeypatch):
    monkeypatch.setenv("SPARKIFY_TARGET", "redshift")
    monkeypatch.delenv("SPARKIFY_S3_BUCKET", raising=False)
    assert current_target() is REDSHIFT
