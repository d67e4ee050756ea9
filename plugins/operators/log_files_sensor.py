"""Wait for the run's daily log files in S3, and say which never came."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.exceptions import AirflowSensorTimeout
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor

from sparkify.aws_connection import s3_client
from sparkify.s3_objects import interval_keys

if TYPE_CHECKING:
    from airflow.utils.context import Context


class SharedClientS3Hook(S3Hook):
    """An S3Hook whose boto3 client is the process's shared one for its connection
    (``aws_connection.s3_client``, cached per connection and pool size: every run's
    sensor gets the same) when nothing overrides the connection's region, SSL
    verification or botocore config. A new client costs
    0.1-0.3 s (botocore's service models, and the hook's user agent, which walks the stack
    with ``inspect.stack()``): more than a poke, and paid by every run's sensor."""

    @cached_property
    def conn(self) -> Any:
        if self._region_name is None and self._verify is None and self._config is None:
            return s3_client(self.aws_conn_id, max_workers=10)
        return super().conn


class LogFilesSensor(S3KeySensor):
    """Wait until every daily log file of the run's data interval is in S3.

    The keys come from ``key_template`` and the data interval (one file for a daily or
    an hourly run), as staging finds them. In ``reschedule`` mode (the default) the task
    frees its worker slot between pokes, and needs no triggerer. When the files have not
    all arrived after ``timeout``, the task fails at once (no retry) naming the URL of
    each missing file.

    :param bucket_name: the bucket of the logs. Templated.
    :param key_template: strftime template of a day's key,
        e.g. ``log_data/%Y/%m/%Y-%m-%d-events.json``. Templated.
    :param aws_conn_id: Airflow connection of S3.
    :param kwargs: ``BaseSensorOperator``'s: ``timeout`` (default 6 hours),
        ``poke_interval`` (default 5 minutes), ``mode`` (default ``"reschedule"``).
    """

    template_fields: Sequence[str] = (*S3KeySensor.template_fields, "key_template")
    aws_hook_class = SharedClientS3Hook
    ui_color = "#B6D7F2"

    def __init__(
        self,
        *,
        bucket_name: str,
        key_template: str,
        aws_conn_id: str,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("mode", "reschedule")
        kwargs.setdefault("timeout", timedelta(hours=6))
        kwargs.setdefault("poke_interval", timedelta(minutes=5))
        super().__init__(bucket_key=[], bucket_name=bucket_name, aws_conn_id=aws_conn_id, **kwargs)
        self.key_template = key_template

    def execute(self, context: Context) -> Any:
        self.bucket_key = interval_keys(
            self.key_template, context["data_interval_start"], context["data_interval_end"]
        )
        try:
            return super().execute(context)
        except AirflowSensorTimeout as exc:
            missing = [
                f"s3://{self.bucket_name}/{key}"
                for key in self.bucket_key
                if not self.hook.check_for_key(key, self.bucket_name)
            ]
            raise AirflowSensorTimeout(
                f"log file(s) of data interval {context['data_interval_start']} to "
                f"{context['data_interval_end']} did not arrive within {self.timeout:.0f} s: "
                f"{', '.join(missing) or 'none missing now (they arrived at the last moment)'}"
            ) from exc
