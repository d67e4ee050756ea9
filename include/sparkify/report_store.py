"""Where reports and alerts live: their names, their URLs, writing and reading them back.

Reports go under one URL prefix, the Airflow Variable ``sparkify_reports_url`` (locally
``s3://sparkify-local/reports``), through Airflow's ``ObjectStoragePath`` and the
connection ``aws-redshift`` (its extra's ``endpoint_url`` points at the local S3 API):

- ``<prefix>/<dag_id>/<run_id>.md`` and ``.html``: a run's report;
- ``<prefix>/alerts/<dag_id>/<run_id>/<task_id>.try<N>.txt``: one failure alert per try
  (an object store has no append);

names made file-safe (``safe_file_name``). ``file://`` URLs (and plain paths) work too,
for tests and standalone use. Airflow is imported only inside ``storage_path`` and
``configured_reports_url``; nothing here imports astro.
"""

from __future__ import annotations

import math
import mimetypes
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from sparkify.config import AWS_CONN_ID, REPORTS_URL_VARIABLE

if TYPE_CHECKING:
    from airflow.io.path import ObjectStoragePath

# The Variable naming where reports go, and the connection they are written through.
STORAGE_CONN_ID = AWS_CONN_ID
ALERTS_FOLDER = "alerts"
LOCAL_PROTOCOLS = frozenset({"file", "local"})
S3_PROTOCOLS = frozenset({"s3", "s3a", "s3n"})

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def safe_file_name(name: str) -> str:
    """``name`` as one file name: ``:``, ``+``, ``/``, spaces... become ``_``; never hidden
    or empty. The name needs no escaping in a URL, an S3 key or a shell.

    ``scheduled__2018-11-02T00:00:00+00:00`` -> ``scheduled__2018-11-02T00_00_00_00_00``.
    """
    safe = _UNSAFE.sub("_", str(name)).lstrip(".")[:200]
    return safe or "_"


def normalize_url(url: str) -> str:
    """``url`` without a trailing ``/``; a plain local path becomes its ``file://`` URL."""
    text = str(url).strip()
    if not text:
        raise ValueError("a reports URL is empty")
    if "://" not in text:
        return Path(text).expanduser().resolve().as_uri()
    return text.rstrip("/")


def join_url(base: str, *names: str) -> str:
    """``base/name/...``, each name made file-safe."""
    return "/".join([normalize_url(base), *(safe_file_name(n) for n in names)])


def report_urls(reports_url: str, dag_id: str, run_id: str) -> tuple[str, str]:
    """The Markdown and HTML URLs of a run's report."""
    base = join_url(reports_url, dag_id, run_id)
    return base + ".md", base + ".html"


def alert_url(
    reports_url: str, dag_id: str, run_id: str, task_id: str, try_number: int | str
) -> str:
    """The URL of one failure alert: one object per task try."""
    folder = join_url(reports_url, ALERTS_FOLDER, dag_id, run_id)
    return f"{folder}/{safe_file_name(f'{task_id}.try{try_number}')}.txt"


def configured_reports_url(default: str | None = None) -> str | None:
    """The Variable ``sparkify_reports_url`` (environment ``AIRFLOW_VAR_SPARKIFY_REPORTS_URL``,
    secrets backend or metadata DB), else ``default``."""
    from airflow.models import Variable

    value = Variable.get(REPORTS_URL_VARIABLE, default_var=None)
    return value.strip() if value and value.strip() else default


def storage_path(url: str, conn_id: str | None = STORAGE_CONN_ID) -> ObjectStoragePath:
    """An ``ObjectStoragePath`` for ``url``; object stores read ``conn_id`` (none for files)."""
    from airflow.io.path import ObjectStoragePath

    url = normalize_url(url)
    protocol = urlsplit(url).scheme
    try:
        return ObjectStoragePath(url, conn_id=None if protocol in LOCAL_PROTOCOLS else conn_id)
    except TypeError as exc:  # upath 0.3 refuses every URL of Airflow 2.x's ObjectStoragePath
        raise RuntimeError(
            f"ObjectStoragePath({url!r}) failed: {exc}. Airflow 2.11's ObjectStoragePath "
            "needs universal-pathlib < 0.3 (pin universal-pathlib==0.2.6)"
        ) from exc


def write_text(url: str, text: str, conn_id: str | None = STORAGE_CONN_ID) -> str:
    """Write ``text`` (UTF-8) at ``url``; returns the URL.

    A local file is written through a temporary file and a rename, an S3 object in one PUT
    with its content type: a reader never sees half a report.
    """
    url = normalize_url(url)
    path = storage_path(url, conn_id)
    data = text.encode("utf-8")
    if path.protocol in LOCAL_PROTOCOLS:
        folder, name = url.rsplit("/", 1)
        storage_path(folder).mkdir(parents=True, exist_ok=True)
        temporary = storage_path(f"{folder}/.{name}.{os.getpid()}.tmp")
        temporary.write_bytes(data)
        temporary.move(path)
    elif path.protocol in S3_PROTOCOLS:
        content_type = mimetypes.guess_type(path.name)[0] or "text/plain"
        with path.open("wb", ContentType=f"{content_type}; charset=utf-8") as file:
            file.write(data)
    else:
        path.write_bytes(data)
    return url


def read_text(url: str, conn_id: str | None = STORAGE_CONN_ID) -> str:
    """The text (UTF-8) at ``url``."""
    return storage_path(url, conn_id).read_bytes().decode("utf-8")


def latest_report(
    reports_url: str,
    dag_id: str,
    since: float | None = None,
    conn_id: str | None = STORAGE_CONN_ID,
) -> str | None:
    """The URL of the newest Markdown report of ``dag_id``, or ``None``.

    ``since`` (a POSIX time) keeps the reports written at or after it; object stores keep
    whole seconds, so a report of the same second as ``since`` counts.
    """
    folder_url = join_url(reports_url, dag_id)
    folder = storage_path(folder_url, conn_id)
    folder.fs.invalidate_cache(folder.path)  # another process may have written since
    try:
        entries = [p for p in folder.iterdir() if p.name.endswith(".md")]
    except FileNotFoundError:  # no report of the DAG yet
        return None
    floor = None if since is None else math.floor(since)
    newest = None
    for path in entries:
        modified = path.stat().st_mtime
        if floor is not None and modified < floor:
            continue
        if newest is None or (modified, path.name) > newest:
            newest = (modified, path.name)
    return None if newest is None else f"{folder_url}/{newest[1]}"
