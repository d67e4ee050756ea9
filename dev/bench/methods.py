"""The four ways of staging S3 JSON into PostgreSQL that the benchmark compares.

Each run happens in a fresh process (``python -m dev.bench.methods '<job json>'``) so that
its peak RSS is its own. Imports happen before the clock starts; the clock covers
everything else: clients and connections, the listing, emptying the table, the load and
the commit. The row count is read from the table after the clock stops.

(a) ``project``: this project's loader, ``StageToRedshiftOperator.execute`` on the
    PostgreSQL path, whose work is ``list_keys`` + the run's transaction (its earlier
    rows deleted, ``copy_objects(cursor, table, columns, keys, line_blocks(client,
    bucket), max_workers=32, rejects=RejectCollector(0), rules=..., constants=...)``,
    rejects and play counts recorded), into a table emptied before the clock starts.
(b) ``astro``: astro-sdk 1.9.0's stock ``LoadFileOperator`` (``aql.load_file``) on a
    ``File(s3://bucket/prefix, filetype=NDJSON)`` into a ``Table`` named
    ``astro_<staging table>`` with the defaults (``if_exists="replace"``: astro drops
    the table and creates it from the first file's DataFrame, then COPYs each file's
    DataFrame as CSV). Its own table because its COPY is positional, without a column
    list: it cannot load the project's table, whose columns differ from the JSON keys
    (lower case, plus ``source_key``).
(c) ``per_file``: the classic path, for each key ``S3Hook.read_key`` ->
    ``pandas.read_json(lines=True)`` -> ``DataFrame.to_sql(if_exists="append")``.
(d) ``floor``: no Airflow, no pandas: one listing, 32 concurrent ``get_object`` with
    boto3, each 256 KB of whole lines decoded in one ``msgspec`` call into structs typed
    from the table's columns (``"parser": "orjson"``: ``orjson.loads`` per line and an
    ``itemgetter`` per key layout), rows written by psycopg 3's C-implemented
    ``Copy.write_row`` into one ``COPY ... FROM STDIN`` in binary format: the fastest
    parser and COPY path in the lock, no checks, pipelined like (a), in one process.
"""

from __future__ import annotations

import io
import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dev.bench.common import PG_CONN_ID, count_rows
from sparkify.config import AWS_CONN_ID

METHOD_LABELS = {
    "a": "project loader (StageToRedshiftOperator, PostgreSQL path)",
    "b": "astro-sdk 1.9.0 load_file",
    "c": "per file: S3Hook.read_key + pandas.read_json + to_sql",
    "d": "floor: boto3 GETs + msgspec structs + psycopg 3 Copy.write_row (binary), one COPY",
}
METHOD_NAMES = {"a": "project", "b": "astro", "c": "per_file", "d": "floor"}

Load = Callable[[], dict[str, Any]]


def _tables(job: dict[str, Any]) -> tuple[str, str, str]:
    return job["bucket"], job["prefix"], job["table"]


# ------------------------------------------------------------------ (a) project loader


def project_loader(job: dict[str, Any]) -> Load:
    import airflow  # noqa: F401 - puts the plugins folder on sys.path
    import psycopg
    from astro.files import File
    from astro.table import Metadata, Table

    from operators.stage_redshift import StageToRedshiftOperator

    bucket, prefix, table = _tables(job)
    operator = StageToRedshiftOperator(
        task_id="bench_stage",
        input_file=File(f"s3://{bucket}/{prefix}", conn_id=AWS_CONN_ID),
        output_table=Table(name=table, conn_id=PG_CONN_ID, metadata=Metadata(schema="public")),
        key_template=None,  # every .json object under the prefix, from list_keys
        max_workers=32,
        max_rejects=0,
    )

    # Every run starts from an empty table, as (d)'s does: the run's DELETE of its own
    # earlier rows (same run id) would otherwise cost a run that follows another (a).
    from dev.bench.common import dsn
    from sparkify.sql import identifier

    with psycopg.connect(dsn(job["database"])) as conn:
        conn.execute(f"TRUNCATE {identifier(table)}")
    _as_in_a_task_process()

    def load() -> dict[str, Any]:
        operator.execute({"run_id": "bench"})
        return {}

    return load


def _as_in_a_task_process() -> None:
    """What Airflow has done in a task's process before ``execute``: its ORM's mappers
    configured (it loaded the task instance). Otherwise the first ``Connection`` object,
    built inside the clock by the operator's first ``get_connection``, would configure
    them all: ~0.25 s of Airflow's start-up no task pays in ``execute``."""
    from sqlalchemy.orm import configure_mappers

    configure_mappers()


# ------------------------------------------------------------------ (b) astro-sdk


class _XComSink:
    """The one thing LoadFileOperator.execute needs from the context's task instance."""

    def xcom_push(self, key: str, value: Any, **kwargs: Any) -> None:
        pass


def astro_load_file(job: dict[str, Any]) -> Load:
    from astro.constants import FileType
    from astro.files import File
    from astro.sql.operators.load_file import LoadFileOperator
    from astro.table import Metadata, Table

    bucket, prefix, table = _tables(job)
    output = f"astro_{table}"
    operator = LoadFileOperator(
        task_id="bench_load_file",
        input_file=File(
            path=f"s3://{bucket}/{prefix}", conn_id=AWS_CONN_ID, filetype=FileType.NDJSON
        ),
        output_table=Table(name=output, conn_id=PG_CONN_ID, metadata=Metadata(schema="public")),
    )

    _as_in_a_task_process()

    def load() -> dict[str, Any]:
        operator.execute({"ti": _XComSink()})
        return {"table": output}

    return load


# ------------------------------------------------------------------ (c) per file, pandas


def per_file_pandas(job: dict[str, Any]) -> Load:
    import pandas as pd
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    from sparkify.sql import identifier

    bucket, prefix, table = _tables(job)
    _as_in_a_task_process()

    def load() -> dict[str, Any]:
        s3 = S3Hook(aws_conn_id=AWS_CONN_ID)
        engine = PostgresHook(postgres_conn_id=PG_CONN_ID).get_sqlalchemy_engine()
        with engine.begin() as conn:
            conn.exec_driver_sql(f"TRUNCATE {identifier(table)}")
        keys = [k for k in s3.list_keys(bucket_name=bucket, prefix=prefix) if k.endswith(".json")]
        rows = 0
        for key in keys:
            frame = pd.read_json(io.StringIO(s3.read_key(key, bucket_name=bucket)), lines=True)
            frame.columns = [str(c).lower() for c in frame.columns]
            frame.to_sql(table, engine, schema="public", if_exists="append", index=False)
            rows += len(frame)
        engine.dispose()
        return {"objects": len(keys), "rows_reported": rows}

    return load


# ------------------------------------------------------------------ (d) the I/O floor

# Bytes read from an object at a time; rows handed from a worker to the COPY at a time,
# and how many such batches may wait: 32 workers hold ~1 MB each, memory stays flat.
_CHUNK = 256 << 10
_BATCH_ROWS = 500
_QUEUE_BATCHES = 32
# COPY's binary format: PostgreSQL parses no text; psycopg's C dumpers write each value
# as its column's type (from the table's udt_name). Text format is the fallback.
FLOOR_COPY_FORMAT = "binary"
# msgspec's typed structs decode ~1.4x faster than orjson's dicts + itemgetter here
# (``"parser": "orjson"`` in a job for the latter).
FLOOR_PARSER = "msgspec"


def json_loads() -> Callable[[bytes], Any]:
    """orjson's parser (the floor's ``"parser": "orjson"``), as the project's exact path uses."""
    try:
        from orjson import loads
    except ImportError:  # pragma: no cover - orjson is in the lock
        from json import loads
    return loads


def row_plan(json_keys: tuple[str, ...], columns: list[str]) -> Callable[[dict], tuple]:
    """The values of ``columns`` from a record with ``json_keys``, as a tuple.

    Column ``c`` takes the key whose lower-case form is ``c`` (the project's mapping);
    a column without a key is NULL. Worked out once per key layout: with every column
    present it is one ``operator.itemgetter`` call per record.
    """
    import operator

    by_lower = {key.lower(): key for key in json_keys}
    keys = [by_lower.get(c) for c in columns]
    if None not in keys:
        getter = operator.itemgetter(*keys)
        if len(keys) == 1:
            return lambda record: (getter(record),)
        return getter
    return lambda record: tuple(None if key is None else record[key] for key in keys)


# Python types msgspec decodes each PostgreSQL type into (the floor's typed structs).
_MSGSPEC_TYPES = {"int2": int, "int4": int, "int8": int, "float4": float, "float8": float}


def struct_plan(
    json_keys: tuple[str, ...], columns: list[str], types: dict[str, str]
) -> tuple[Any, Callable[[Any], tuple]]:
    """A msgspec decoder of records with ``json_keys`` and the getter of ``columns``' values.

    The struct has one field per column, typed from its ``udt_name`` (``int``, ``float``,
    else ``str``; every one may be null or missing), read from the key whose lower-case
    form is the column's; other keys are skipped unparsed. No checks beyond the types
    msgspec needs to build the values: it is the fastest decoding the lock has.
    """
    import operator

    import msgspec

    by_lower = {key.lower(): key for key in json_keys}
    fields = []
    for n, column in enumerate(columns):
        kind = _MSGSPEC_TYPES.get(types[column], str)
        name = by_lower.get(column, f"floor: no key for {column}")
        fields.append((f"c{n}", kind | None, msgspec.field(name=name, default=None)))
    struct = msgspec.defstruct("FloorRecord", fields, gc=False)
    getter = operator.attrgetter(*[f"c{n}" for n in range(len(columns))])
    if len(columns) == 1:
        return msgspec.json.Decoder(struct), lambda record: (getter(record),)
    return msgspec.json.Decoder(struct), getter


def io_floor(job: dict[str, Any]) -> Load:
    """Fetch, parse and COPY with the least work per row, streaming like (a) does.

    One listing, 32 concurrent ``get_object`` (boto3); each worker reads its object in
    256 KB pieces, parses every line with ``orjson.loads``, picks the columns' values
    (``row_plan``) and hands batches of row tuples to a bounded queue. The main thread
    drains it into one ``COPY ... FROM STDIN`` with psycopg 3's ``Copy.write_row``,
    which formats each row in C (``psycopg_binary``), in COPY's binary format. No checks
    of types or lengths: what is left is I/O, the JSON parse and the COPY.
    """
    import collections
    import queue
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import boto3
    import psycopg
    from botocore.config import Config

    from dev.bench.common import S3_ENDPOINT, dsn
    from sparkify.sql import identifier

    bucket, prefix, table = _tables(job)
    workers = 32
    loads = json_loads()
    binary = job.get("copy_format", FLOOR_COPY_FORMAT) == "binary"
    parser = job.get("parser", FLOOR_PARSER)

    def load() -> dict[str, Any]:
        client = boto3.client(
            "s3",
            endpoint_url=S3_ENDPOINT,
            region_name="us-east-1",
            aws_access_key_id="local-access-key",
            aws_secret_access_key="local-secret-key",
            config=Config(max_pool_connections=workers),
        )
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        keys = sorted(
            item["Key"]
            for page in pages
            for item in page.get("Contents", ())
            if item["Key"].endswith(".json")
        )
        conn = psycopg.connect(dsn(job["database"]))
        cursor = conn.cursor()
        cursor.execute(
            "SELECT column_name, udt_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position",
            (table,),
        )
        types = dict(cursor.fetchall())
        # Like the project's loader, record each row's object where the table has a column
        # for it (not from the JSON), so that both load the same rows: it goes last.
        with_source = "source_key" in types
        columns = [c for c in types if c != "source_key"]
        copy_columns = [*columns, "source_key"] if with_source else columns
        cursor.execute(f"TRUNCATE {identifier(table)}")
        batches: queue.Queue = queue.Queue(maxsize=_QUEUE_BATCHES)
        counts: list[int] = []
        failures: list[BaseException] = []
        stop = threading.Event()

        def stage(key: str) -> None:
            if stop.is_set():
                return
            body = client.get_object(Bucket=bucket, Key=key)["Body"]
            plans: dict[tuple[str, ...], Callable[[dict], tuple]] = {}
            suffix = (key,)
            batch: list[tuple] = []
            rows = 0
            pending = b""
            if parser == "msgspec":
                rows = stage_msgspec(key, body)
                counts.append(rows)  # list.append is atomic
                return
            while True:
                piece = body.read(_CHUNK)
                lines = (pending + piece).split(b"\n")
                pending = lines.pop() if piece else b""
                for line in lines:
                    if not line or line.isspace():
                        continue
                    record = loads(line)
                    layout = tuple(record)
                    plan = plans.get(layout) or plans.setdefault(layout, row_plan(layout, columns))
                    batch.append(plan(record) + suffix if with_source else plan(record))
                    if len(batch) >= _BATCH_ROWS:
                        rows += len(batch)
                        batches.put(batch)
                        batch = []
                if not piece:
                    break
            if batch:
                rows += len(batch)
                batches.put(batch)
            counts.append(rows)  # list.append is atomic

        def stage_msgspec(key: str, body: Any) -> int:
            decoders: dict[tuple[str, ...], tuple[Any, Callable[[Any], tuple]]] = {}
            suffix = (key,)
            rows = 0
            pending = b""
            while True:
                piece = body.read(_CHUNK)
                data = pending + piece
                end = data.rfind(b"\n") + 1 if piece else len(data)
                data, pending = data[:end], data[end:]
                if data.strip():
                    first = data.lstrip().split(b"\n", 1)[0]
                    layout = tuple(loads(first))
                    plan = decoders.get(layout)
                    if plan is None:
                        plan = decoders[layout] = struct_plan(layout, columns, types)
                    decoder, getter = plan
                    values = map(getter, decoder.decode_lines(data))
                    batch = [v + suffix for v in values] if with_source else list(values)
                    rows += len(batch)
                    batches.put(batch)
                if not piece:
                    break
            return rows

        def produce() -> None:
            try:
                with ThreadPoolExecutor(max_workers=workers) as pool:
                    for future in [pool.submit(stage, key) for key in keys]:
                        future.result()
            except BaseException as exc:
                failures.append(exc)
                stop.set()
            finally:
                batches.put(None)

        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        column_sql = ", ".join(identifier(c) for c in copy_columns)
        options = " (FORMAT BINARY)" if binary else ""
        statement = f"COPY {identifier(table)} ({column_sql}) FROM STDIN{options}"
        try:
            with cursor.copy(statement) as copy:
                if binary:
                    copy.set_types([types[c] for c in copy_columns])
                drain = collections.deque(maxlen=0).extend
                for batch in iter(batches.get, None):
                    drain(map(copy.write_row, batch))
        except BaseException:
            stop.set()
            while producer.is_alive():  # let blocked workers finish
                try:
                    batches.get(timeout=0.1)
                except queue.Empty:
                    continue
            raise
        finally:
            producer.join()
        if failures:
            raise failures[0]
        conn.commit()
        conn.close()
        return {"objects": len(keys), "rows_reported": sum(counts)}

    return load


METHODS: dict[str, Callable[[dict[str, Any]], Load]] = {
    "a": project_loader,
    "b": astro_load_file,
    "c": per_file_pandas,
    "d": io_floor,
}


def _max_rss_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # KiB on Linux


def _vm_hwm_mb(pid: int | str = "self") -> float:
    """A process's peak resident set (``VmHWM``), 0 when it is gone.

    Not ``ru_maxrss``: Linux carries that over ``exec`` from the process image it
    replaces (``exec_mmap`` keeps the old mm's high-water mark), so a job spawned by a
    300 MB parent would report 300 MB however little it used. ``VmHWM`` belongs to the
    job's own image.
    """
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class ChildMemory:
    """Peak RSS of the processes the load starts (e.g. the loader's encoding worker).

    A thread samples, every ``interval`` seconds, the ``VmHWM`` (peak resident set) of
    every descendant that did not exist when the clock started; ``peak_mb`` is the sum
    of their peaks. Summed with the loader's own peak, it counts each process's peak as
    if they all coincided: an upper bound of the load's memory, never less.
    """

    def __init__(self, interval: float = 0.02) -> None:
        import threading

        import psutil

        self._me = psutil.Process()
        self._before = {p.pid for p in self._me.children(recursive=True)}
        self._peaks: dict[int, float] = {}
        self._interval = interval
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-child-rss", daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        for child in self._me.children(recursive=True):
            if child.pid in self._before:
                continue
            peak = _vm_hwm_mb(child.pid)
            self._peaks[child.pid] = max(peak, self._peaks.get(child.pid, 0.0))

    def _run(self) -> None:
        while not self._done.wait(self._interval):
            self._sample()

    def stop(self) -> dict[str, float]:
        """Stop sampling; the children's summed peak (MB) and how many there were."""
        self._done.set()
        self._thread.join()
        return {"peak_mb": sum(self._peaks.values()), "processes": len(self._peaks)}


def check_target(job: dict[str, Any]) -> None:
    """Refuse to run unless the warehouse connection is the job's ``bench_*`` database.

    A malformed ``AIRFLOW_CONN_*`` variable makes Airflow fall back to the metadata DB's
    connection, i.e. the ``sparkify`` database that ``make run`` leaves up.
    """
    if job["method"] == "d":  # no Airflow: connects to job["database"] itself
        return
    from airflow.hooks.base import BaseHook

    schema = BaseHook.get_connection(PG_CONN_ID).schema
    if schema != job["database"] or not schema.startswith("bench_"):
        raise SystemExit(
            f"connection {PG_CONN_ID!r} points at database {schema!r}, not the benchmark's "
            f"{job['database']!r}: is AIRFLOW_CONN_{PG_CONN_ID.upper()} set (JSON)?"
        )


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Set up (imports), then time one load; returns seconds, rows and memory."""
    load = METHODS[job["method"]](job)
    check_target(job)
    baseline = _vm_hwm_mb()
    children = ChildMemory()
    cpu_before = _cpu_seconds()
    started = time.perf_counter()
    info = load()
    seconds = time.perf_counter() - started
    cpu = _cpu_seconds() - cpu_before
    started_children = children.stop()
    own_peak = _vm_hwm_mb()
    table = info.pop("table", job["table"])
    result = {
        "method": job["method"],
        "seconds": seconds,
        # CPU time of this process (all threads) during the load: near ``seconds`` means
        # bound by Python (one core, the GIL); far below means waiting (S3, PostgreSQL).
        "cpu_seconds": cpu,
        "table": table,
        "rows": count_rows(job["database"], table),
        # The load's memory: this process's peak plus the peaks of the processes it
        # started (each counted at its own peak: an upper bound, see ChildMemory).
        "peak_rss_mb": own_peak + started_children["peak_mb"],
        "own_peak_rss_mb": own_peak,
        "started_processes": started_children["processes"],
        "started_processes_peak_rss_mb": started_children["peak_mb"],
        "children_peak_rss_mb": _max_rss_mb(resource.RUSAGE_CHILDREN),
        "baseline_rss_mb": baseline,
        **info,
    }
    return result


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    job = json.loads(args[0])
    result = run_job(job)
    Path(job["result_path"]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
