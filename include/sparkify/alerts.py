"""A task failed for good: say so clearly, where people look.

``alert_on_failure`` is an ``on_failure_callback`` (set in the DAGs' ``default_args``; it
fires once the retries are spent). It

1. writes a short alert (DAG, task, run, data interval, try, the exception's first line,
   the log's URL) to the task log at ERROR level;
2. stores it as its own object, ``<reports URL>/alerts/<dag_id>/<run_id>/<task_id>.try<N>.txt``
   (an object store has no append), where the reports URL is the Airflow Variable
   ``sparkify_reports_url`` and the store's credentials the connection ``aws-redshift``,
   both read at callback time; with the Variable unset, the alert is only logged;
3. when ``SPARKIFY_ALERT_CONN_ID`` names an Airflow connection, POSTs it as JSON there with
   the HTTP provider's ``HttpHook``: the connection's host is the webhook's URL (e.g.
   ``https://hooks.example.com/services/T0/B0/x``), or host + schema (``https``) + port,
   with an optional path in its extra as ``{"endpoint": "/path"}``. The JSON has the
   alert's fields and a ``text`` (what Slack-style webhooks display).

It never raises: a broken context, an unreachable store or webhook is logged and the
other steps still happen. Secrets Airflow knows of are masked in what leaves the task.

Under ``make run`` (and the e2e tests) Airflow's ``DebugExecutor`` fails a task at once,
skipping its retries, and calls no failure callback: there the run report
(``write_run_report``) is what shows the failure.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sparkify.report_store import (
    REPORTS_URL_VARIABLE,
    STORAGE_CONN_ID,
    alert_url,
    configured_reports_url,
    write_text,
)

ALERT_CONN_ENV = "SPARKIFY_ALERT_CONN_ID"
UNKNOWN = "unknown"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Alert:
    dag_id: str
    task_id: str
    run_id: str
    data_interval_start: str
    data_interval_end: str
    try_number: str
    error: str
    log_url: str
    failed_at: str

    def text(self) -> str:
        return "\n".join(
            [
                f"Sparkify task failed: {self.dag_id}.{self.task_id} (try {self.try_number})",
                f"  run:           {self.run_id}",
                f"  data interval: {self.data_interval_start} to {self.data_interval_end}",
                f"  error:         {self.error}",
                f"  log:           {self.log_url}",
                f"  failed at:     {self.failed_at}",
            ]
        )

    def payload(self) -> dict[str, str]:
        return {**asdict(self), "text": self.text()}


def _get(read: Callable[[], Any]) -> str:
    """``str(read())``, or ``unknown`` when it is missing or reading it fails."""
    try:
        value = read()
        if value is None:
            return UNKNOWN
        if isinstance(value, datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=UTC)
            value = value.astimezone(UTC).isoformat()
        text = str(value)
    except Exception:
        return UNKNOWN
    return text or UNKNOWN


def first_line(exception: Any) -> str:
    """``Type: first line of the message`` (Airflow sometimes passes a plain string)."""
    if exception is None:
        return "no exception given (see the log)"
    if isinstance(exception, str):
        lines = exception.strip().splitlines()
        return lines[0] if lines else "no message (see the log)"
    lines = str(exception).strip().splitlines()
    name = type(exception).__name__
    return f"{name}: {lines[0]}" if lines else name


def _first_known(*reads: Callable[[], Any]) -> str:
    for read in reads:
        value = _get(read)
        if value != UNKNOWN:
            return value
    return UNKNOWN


def _tries(ti: Any) -> str:
    number = ti.try_number
    max_tries = getattr(ti, "max_tries", None)
    if isinstance(number, int) and isinstance(max_tries, int) and max_tries + 1 >= number:
        return f"{number} of {max_tries + 1}"
    return str(number)


def _context(context: Any) -> Mapping[str, Any]:
    return context if isinstance(context, Mapping) else {}


def _task_instance(ctx: Mapping[str, Any]) -> Any:
    return ctx["ti"] if ctx.get("ti") is not None else ctx["task_instance"]


def build_alert(context: Mapping[str, Any] | Any) -> Alert:
    """The alert of a failure context; every field that cannot be read says ``unknown``."""
    ctx = _context(context)

    def ti() -> Any:
        return _task_instance(ctx)

    return Alert(
        dag_id=_first_known(lambda: ti().dag_id, lambda: ctx["dag"].dag_id),
        task_id=_get(lambda: ti().task_id),
        run_id=_first_known(lambda: ctx["run_id"], lambda: ti().run_id),
        data_interval_start=_get(lambda: ctx["data_interval_start"]),
        data_interval_end=_get(lambda: ctx["data_interval_end"]),
        try_number=_get(lambda: _tries(ti())),
        error=_get(lambda: first_line(ctx.get("exception"))),
        log_url=_get(lambda: ti().log_url),
        failed_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def _redact(text: str) -> str:
    """Mask the secrets Airflow knows of (as in task logs) before the text leaves the task."""
    try:
        from airflow.utils.log.secrets_masker import redact

        return str(redact(text))
    except Exception:
        return text


def try_number(context: Mapping[str, Any] | Any) -> str:
    """The failed try's number (``unknown`` when the context has none)."""
    return _get(lambda: _task_instance(_context(context)).try_number)


def store_alert(
    alert: Alert, reports_url: str, try_no: str, conn_id: str | None = STORAGE_CONN_ID
) -> str:
    """Write the alert as ``<reports_url>/alerts/<dag>/<run>/<task>.try<N>.txt``; its URL."""
    url = alert_url(reports_url, alert.dag_id, alert.run_id, alert.task_id, try_no)
    return write_text(url, _redact(alert.text()) + "\n", conn_id)


def post_alert(alert: Alert, conn_id: str, timeout: float = 10.0) -> None:
    """POST the alert as JSON to the HTTP connection ``conn_id``; raises on failure."""
    from airflow.hooks.base import BaseHook
    from airflow.providers.http.hooks.http import HttpHook

    endpoint = BaseHook.get_connection(conn_id).extra_dejson.get("endpoint")
    payload = json.loads(_redact(json.dumps(alert.payload())))
    HttpHook(method="POST", http_conn_id=conn_id).run(
        endpoint=endpoint,
        json=payload,
        headers={"Content-Type": "application/json"},
        extra_options={"timeout": timeout, "check_response": True},
    )


def _task_logger(context: Any) -> logging.Logger:
    """The task's own logger when there is one (so the alert lands in the task log)."""
    with contextlib.suppress(Exception):
        logger = context["ti"].log
        if isinstance(logger, logging.Logger | logging.LoggerAdapter):
            return logger  # type: ignore[return-value]
    return logging.getLogger("airflow.task")


def _reason(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _store(alert: Alert, context: Any, logger: logging.Logger) -> None:
    try:
        reports_url = configured_reports_url()
    except Exception as exc:
        reports_url = None
        with contextlib.suppress(Exception):
            logger.warning("Could not read the Variable %s: %s", REPORTS_URL_VARIABLE, _reason(exc))
    if not reports_url:
        with contextlib.suppress(Exception):
            logger.info("Variable %s is not set: the alert is not stored", REPORTS_URL_VARIABLE)
        return
    try:
        url = store_alert(alert, reports_url, try_number(context))
        logger.info("Alert stored at %s", url)
    except Exception as exc:
        with contextlib.suppress(Exception):
            logger.warning("Could not store the alert under %s: %s", reports_url, _reason(exc))


def alert_on_failure(context: Any, environ: Mapping[str, str] | None = None) -> None:
    """``on_failure_callback``: log, store as an object, POST to the webhook. Never raises.

    ``environ`` (default ``os.environ``) is where ``SPARKIFY_ALERT_CONN_ID`` is read.
    """
    try:
        environ = os.environ if environ is None else environ
        alert = build_alert(context)
        logger = _task_logger(context)
    except Exception:  # pragma: no cover - build_alert reads defensively
        log.exception("Could not build the failure alert")
        return
    try:
        logger.error("%s", alert.text())
    except Exception:
        log.exception("Could not log the failure alert")
    _store(alert, context, logger)
    conn_id = environ.get(ALERT_CONN_ENV)
    if not conn_id:
        return
    try:
        from airflow.hooks.base import BaseHook

        BaseHook.get_connection(conn_id)
    except Exception:
        with contextlib.suppress(Exception):
            logger.warning(
                "%s=%s names no Airflow connection: the alert was not posted",
                ALERT_CONN_ENV,
                conn_id,
            )
        return
    try:
        post_alert(alert, conn_id)
        logger.info("Alert posted to connection %r", conn_id)
    except Exception as exc:
        with contextlib.suppress(Exception):
            logger.warning("Could not post the alert to connection %r: %s", conn_id, _reason(exc))
