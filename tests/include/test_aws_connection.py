"""What staging takes from the AWS connection (an environment connection, no server)."""

from __future__ import annotations

from sparkify import aws_connection
from tests.fakes import set_connection

ROLE = "arn:aws:iam::123456789012:role/sparkifyCopy"


def test_an_iam_role_is_the_copy_credentials_and_no_keys_are_read(monkeypatch):
    # No connection defined at all: with a role, the keys are never looked up.
    assert aws_connection.copy_credentials("nowhere", ROLE) == f"IAM_ROLE '{ROLE}'"


def test_without_a_role_the_connections_keys_are_the_credentials(monkeypatch):
    set_connection(monkeypatch, "s3", "aws", login="AKIAEXAMPLE", password="secret/key+1")
    clause = aws_connection.copy_credentials("s3", None)
    assert clause.startswith("CREDENTIALS '")
    assert "aws_access_key_id=AKIAEXAMPLE" in clause
    assert "aws_secret_access_key=secret/key+1" in clause


def test_the_region_is_the_connections_region_name(monkeypatch):
    set_connection(monkeypatch, "s3", "aws", extra={"region_name": "us-west-2"})
    assert aws_connection.region("s3") == "us-west-2"
    set_connection(monkeypatch, "s3", "aws")
    assert aws_connection.region("s3") is None


def test_the_s3_client_pools_a_connection_per_worker(monkeypatch):
    set_connection(
        # Not one-letter keys: Airflow's secrets masker would hide that letter in every
        # later log line and exception message of the process.
        monkeypatch, "s3", "aws", login="pool-test-key", password="pool-test-secret",
        extra={"endpoint_url": "http://127.0.0.1:9", "region_name": "us-east-1"},
    )  # fmt: skip
    client = aws_connection.s3_client("s3", max_workers=48)
    assert client.meta.endpoint_url == "http://127.0.0.1:9"
    assert client.meta.config.max_pool_connections == 48
    assert client.meta.config.retries["total_max_attempts"] == 6  # 5 retries


def test_one_client_per_connection_and_pool_until_the_connection_changes(monkeypatch):
    set_connection(monkeypatch, "s3", "aws", extra={"endpoint_url": "http://127.0.0.1:9"})
    first = aws_connection.s3_client("s3", max_workers=16)
    assert aws_connection.s3_client("s3", max_workers=16) is first
    assert aws_connection.s3_client("s3", max_workers=32) is not first
    set_connection(monkeypatch, "s3", "aws", extra={"endpoint_url": "http://127.0.0.1:10"})
    moved = aws_connection.s3_client("s3", max_workers=16)
    assert moved is not first
    assert moved.meta.endpoint_url == "http://127.0.0.1:10"


def test_the_s3_client_takes_the_connections_keys_without_walking_the_stack(monkeypatch):
    from airflow.providers.amazon.aws.hooks.base_aws import AwsGenericHook

    walks: list[str] = []  # the hook swallows errors of this lookup: record, don't raise
    monkeypatch.setattr(AwsGenericHook, "_find_operator_class_name", staticmethod(walks.append))
    set_connection(
        monkeypatch, "s3", "aws", login="stack-test-key", password="stack-test-secret",
        extra={"service_config": {"s3": {"endpoint_url": "http://127.0.0.1:11"}},
               "region_name": "eu-west-1"},
    )  # fmt: skip
    client = aws_connection.s3_client("s3", max_workers=8)
    assert client.meta.endpoint_url == "http://127.0.0.1:11"
    assert client.meta.region_name == "eu-west-1"
    credentials = client._request_signer._credentials.get_frozen_credentials()
    assert (credentials.access_key, credentials.secret_key) == (
        "stack-test-key",
        "stack-test-secret",
    )
    assert walks == []  # no inspect.stack() of every frame's source
