"""What staging takes from the AWS connection: an S3 client, the region, COPY credentials.

Airflow's hooks, no astro: the operators hand in the connection id.
"""

from __future__ import annotations

import functools
from typing import Any

from sparkify import redshift_sql


def s3_client(aws_conn_id: str, max_workers: int) -> Any:
    """A boto3 S3 client of ``aws_conn_id`` with a connection pool for ``max_workers``
    concurrent GETs, retrying throttles and dropped connections (up to 5 retries).

    One client per connection (as it is now) and pool size in a process: building one
    reads botocore's service models, 0.1-0.3 s, which every staging task of a backfill
    running tasks in-process would pay again. boto3 clients are thread-safe.
    """
    from airflow.hooks.base import BaseHook

    return _client(aws_conn_id, max_workers, BaseHook.get_connection(aws_conn_id).get_uri())


@functools.lru_cache(maxsize=8)
def _client(aws_conn_id: str, max_workers: int, connection_uri: str) -> Any:
    # connection_uri is part of the key only: a changed connection gets a new client.
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from botocore.config import Config

    config = Config(
        max_pool_connections=max(10, max_workers),
        retries={"max_attempts": 5, "mode": "standard"},
    )
    hook = S3Hook(aws_conn_id=aws_conn_id, config=config)
    # The hook's session (credentials, region, role) and endpoint, but not its
    # get_conn(): that tags the user agent with the calling operator, found by
    # inspect.stack(), which reads the source of every frame (~0.3 s a staging task).
    return hook.get_session().client(
        "s3",
        endpoint_url=hook.conn_config.get_service_endpoint_url(service_name="s3"),
        config=config,
        verify=hook.verify,
    )


def region(aws_conn_id: str) -> str | None:
    """The connection's ``region_name`` extra, or None."""
    from airflow.hooks.base import BaseHook

    return BaseHook.get_connection(aws_conn_id).extra_dejson.get("region_name")


def copy_credentials(aws_conn_id: str, iam_role: str | None) -> str:
    """A Redshift COPY's credentials clause: ``IAM_ROLE '...'`` when ``iam_role`` is set,
    else the connection's access keys (and session token). Never log it."""
    if iam_role:
        return redshift_sql.redshift_iam_role(iam_role)
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    keys = S3Hook(aws_conn_id=aws_conn_id).get_credentials()
    return redshift_sql.redshift_access_keys(keys.access_key, keys.secret_key, keys.token)
