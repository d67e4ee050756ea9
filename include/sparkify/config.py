"""Which warehouse and which S3 a run uses: configuration, read from the environment.

``SPARKIFY_TARGET`` picks the target (default ``local``): the embedded PostgreSQL and the
local S3 API, or ``redshift`` with real S3. Connection ids are the ones declared in
``airflow_settings.yaml``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

Dialect = Literal["postgres", "redshift"]


@dataclass(frozen=True)
class Target:
    """Everything a DAG needs to know about where it reads from and writes to.

    :param name: the target's name (``SPARKIFY_TARGET``).
    :param dialect: the warehouse's SQL dialect, which also picks the staging path.
    :param warehouse_conn_id: Airflow connection of the warehouse.
    :param aws_conn_id: Airflow connection with the S3 credentials (and endpoint, locally).
    :param s3_bucket: bucket holding ``song_data/`` and ``log_data/``.
    :param schema: warehouse schema of every table.
    """

    name: str
    dialect: Dialect
    warehouse_conn_id: str
    aws_conn_id: str
    s3_bucket: str
    schema: str = "public"


LOCAL = Target(
    name="local",
    dialect="postgres",
    warehouse_conn_id="sparkify_postgres",
    aws_conn_id="sparkify_s3_local",
    s3_bucket="sparkify-local",
)
REDSHIFT = Target(
    name="redshift",
    dialect="redshift",
    warehouse_conn_id="redshift",
    aws_conn_id="aws-redshift",
    s3_bucket="udacity-dend",
)
TARGETS = {t.name: t for t in (LOCAL, REDSHIFT)}

SONG_PREFIX = "song_data/"
LOG_PREFIX = "log_data/"
# One file per UTC day; strftime fields of the day.
LOG_KEY_TEMPLATE = "log_data/%Y/%m/%Y-%m-%d-events.json"


def current_target(environ: os._Environ | dict[str, str] = os.environ) -> Target:
    """The target named by ``SPARKIFY_TARGET`` (bucket overridable by ``SPARKIFY_S3_BUCKET``)."""
    name = environ.get("SPARKIFY_TARGET", "local")
    try:
        target = TARGETS[name]
    except KeyError:
        raise ValueError(
            f"SPARKIFY_TARGET={name!r} is not a known target; use one of {sorted(TARGETS)}"
        ) from None
    bucket = environ.get("SPARKIFY_S3_BUCKET")
    if bucket:
        target = Target(**{**target.__dict__, "s3_bucket": bucket})
    return target
