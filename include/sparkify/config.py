"""Where the pipeline reads and writes: connection ids, variables, S3 layout, the dialect.

The DAGs use the seed's two connections, ``redshift`` (the warehouse) and
``aws-redshift`` (S3), and Airflow Variables for the rest; all of them are declared for
local development in ``airflow_settings.yaml``. Which SQL dialect and staging path a run
uses follows the warehouse connection's type, read when the task runs: ``postgres``
locally (PostgreSQL standing in for Redshift), ``redshift`` in production.
"""

from __future__ import annotations

from typing import Literal

Dialect = Literal["postgres", "redshift"]

WAREHOUSE_CONN_ID = "redshift"
AWS_CONN_ID = "aws-redshift"
SCHEMA = "public"

# Airflow Variables (airflow_settings.yaml locally, AIRFLOW_VAR_* on a deployment).
BUCKET_VARIABLE = "sparkify_s3_bucket"
REPORTS_URL_VARIABLE = "sparkify_reports_url"
# Redshift only: the IAM role COPY assumes to read the bucket (unset: the S3 keys).
IAM_ROLE_VARIABLE = "sparkify_redshift_iam_role"

SONG_PREFIX = "song_data/"
LOG_PREFIX = "log_data/"
# One file per UTC day; strftime fields of the day.
LOG_KEY_TEMPLATE = "log_data/%Y/%m/%Y-%m-%d-events.json"

# Connection types of the warehouse, and the dialect each one speaks.
DIALECTS: dict[str, Dialect] = {"postgres": "postgres", "redshift": "redshift"}


def variable_template(name: str, default: str | None = None) -> str:
    """A Jinja expression reading Variable ``name`` when a task runs (not at parse time);
    without ``default`` a missing Variable fails the task, naming it."""
    if default is None:
        return "{{ var.value." + name + " }}"
    return "{{ var.value.get(" + repr(name) + ", " + repr(default) + ") }}"


def dialect_of(conn_type: str | None, conn_id: str = WAREHOUSE_CONN_ID) -> Dialect:
    """The SQL dialect of a warehouse connection of type ``conn_type``."""
    try:
        return DIALECTS[conn_type or ""]
    except KeyError:
        raise ValueError(
            f"connection {conn_id!r} has conn_type {conn_type!r}: the warehouse must be "
            f"one of {sorted(DIALECTS)} (PostgreSQL locally, Redshift in production)"
        ) from None


def warehouse_dialect(conn_id: str = WAREHOUSE_CONN_ID) -> Dialect:
    """The dialect of the Airflow connection ``conn_id``, looked up now (at run time)."""
    from airflow.hooks.base import BaseHook

    return dialect_of(BaseHook.get_connection(conn_id).conn_type, conn_id)
