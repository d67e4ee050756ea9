"""Unit tests for dev/local_stack/airflow_settings.py: the file, the native host rule."""

from __future__ import annotations

import json

from airflow.models import Connection

from dev.local_stack.airflow_settings import (
    environment,
    native_entry,
    native_url,
    read_settings,
    variables,
)


def test_the_dags_connections_and_variables_are_declared_once():
    connections = {c["conn_id"]: c for c in read_settings()["connections"]}
    assert sorted(connections) == ["aws-redshift", "redshift"]
    assert connections["redshift"]["conn_type"] == "postgres"  # PostgreSQL stands in for Redshift
    assert connections["aws-redshift"]["conn_type"] == "aws"
    assert variables() == {
        "sparkify_s3_bucket": "sparkify-local",
        "sparkify_reports_url": "s3://sparkify-local/reports",
    }


def test_native_rule_maps_only_the_compose_service_names_to_loopback():
    assert native_url("http://sparkify-s3:8002") == "http://127.0.0.1:8002"
    assert native_url("http://sparkify-s3:8002/path") == "http://127.0.0.1:8002/path"
    assert native_url("https://s3.us-west-2.amazonaws.com") == "https://s3.us-west-2.amazonaws.com"
    entry = {"conn_id": "x", "conn_host": "sparkify-warehouse", "conn_port": 8001}
    assert native_entry(entry) == {**entry, "conn_host": "127.0.0.1"}
    other = {"conn_id": "y", "conn_host": "cluster.example.redshift.amazonaws.com"}
    assert native_entry(other) == other
    as_json = {
        "conn_id": "z",
        "conn_extra": json.dumps({"endpoint_url": "http://sparkify-s3:8002"}),
    }
    assert native_entry(as_json)["conn_extra"] == {"endpoint_url": "http://127.0.0.1:8002"}


def test_environment_holds_connections_airflow_can_read(monkeypatch):
    env = environment("sparkify_test", bucket="bucket-x")
    # Airflow upper-cases the conn id as it is: the hyphen stays.
    assert sorted(k for k in env if k.startswith("AIRFLOW_CONN_")) == [
        "AIRFLOW_CONN_AWS-REDSHIFT", "AIRFLOW_CONN_REDSHIFT",
    ]  # fmt: skip
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    warehouse = Connection.get_connection_from_secrets("redshift")
    assert (warehouse.conn_type, warehouse.host, warehouse.port, warehouse.schema) == (
        "postgres", "127.0.0.1", 8001, "sparkify_test",
    )  # fmt: skip
    s3 = Connection.get_connection_from_secrets("aws-redshift")
    assert (s3.conn_type, s3.login, s3.extra_dejson["endpoint_url"]) == (
        "aws", "local-access-key", "http://127.0.0.1:8002",
    )  # fmt: skip
    assert env["AIRFLOW_VAR_SPARKIFY_S3_BUCKET"] == "bucket-x"
    assert env["AIRFLOW_VAR_SPARKIFY_REPORTS_URL"] == "s3://bucket-x/reports"
