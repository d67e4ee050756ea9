"""Unit tests for sparkify.config: the dialect follows the warehouse connection's type."""

from __future__ import annotations

import pytest
from airflow.models import Connection

from sparkify.config import dialect_of, variable_template, warehouse_dialect


@pytest.mark.parametrize(
    ("conn_type", "dialect"), [("postgres", "postgres"), ("redshift", "redshift")]
)
def test_dialect_follows_the_connection_type(conn_type, dialect):
    assert dialect_of(conn_type) == dialect


@pytest.mark.parametrize("conn_type", ["mysql", "Redshift", "", None])
def test_other_connection_types_are_refused_by_name(conn_type):
    with pytest.raises(ValueError) as info:
        dialect_of(conn_type, "redshift")
    assert str(info.value) == (
        f"connection 'redshift' has conn_type {conn_type!r}: the warehouse must be one of "
        "['postgres', 'redshift'] (PostgreSQL locally, Redshift in production)"
    )


def test_warehouse_dialect_reads_the_connection_when_called(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_REDSHIFT", Connection(conn_type="redshift").get_uri())
    assert warehouse_dialect() == "redshift"
    monkeypatch.setenv("AIRFLOW_CONN_REDSHIFT", Connection(conn_type="postgres").get_uri())
    assert warehouse_dialect() == "postgres"


def test_variable_template_is_rendered_by_airflow_at_run_time():
    assert variable_template("sparkify_s3_bucket") == "{{ var.value.sparkify_s3_bucket }}"
    assert variable_template("role", default="") == "{{ var.value.get('role', '') }}"
