"""What every part of the benchmark shares: datasets, their cache, buckets, databases.

Datasets are generated with the project's seeded generator into ``.local/bench/data``,
one folder per spec (named by a hash of the spec, so a rerun finds it), with a
``manifest.json`` listing the staged objects and their rows. Each dataset is uploaded
to its own bucket of the local S3 API, named after the same hash; a bucket that already
holds the same number of objects is reused.

Only ``bench_*`` databases and ``bench-*`` buckets are touched.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from dev.local_stack.airflow_settings import environment
from dev.local_stack.stack import HOST, PG_PASSWORD, PG_PORT, PG_USER, S3_PORT, STATE_DIR
from sparkify.config import WAREHOUSE_CONN_ID

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BENCH_DIR = STATE_DIR / "bench"
S3_ENDPOINT = f"http://{HOST}:{S3_PORT}"
# The connection ids the DAG and the operators use; the benchmark overrides them through
# AIRFLOW_CONN_* variables pointing at its own database (see connection_environment).
PG_CONN_ID = WAREHOUSE_CONN_ID

# What each kind of dataset stages: prefix in the bucket, staging table.
KINDS = {
    "songs": ("song_data/", "staging_songs"),
    "events": ("log_data/", "staging_events"),
    "month": ("", ""),  # both prefixes, for the backfill through Airflow
}


@dataclass(frozen=True)
class GeneratorSpec:
    """Arguments of ``python -m dev.sample_data`` (see ``SampleSpec``)."""

    songs: int
    days: int
    events_per_day: tuple[int, int]
    start: str = "2018-11-01"
    users: int = 96
    match_ratio: float = 0.1
    seed: int = 42

    def sample_spec(self):
        from dev.sample_data import SampleSpec

        return SampleSpec(
            start=date.fromisoformat(self.start),
            days=self.days,
            songs=self.songs,
            events_per_day=tuple(self.events_per_day),
            users=self.users,
            match_ratio=self.match_ratio,
            seed=self.seed,
        )

    def cli(self) -> str:
        low, high = self.events_per_day
        return (
            f"--songs {self.songs} --days {self.days} --events-per-day {low} {high}"
            f" --start {self.start} --seed {self.seed}"
        )

    def digest(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Dataset:
    """One benchmarked dataset: what to generate and which prefix/table it stages.

    :param samples: per method (``"b"``, ``"c"``), how many objects to load when the
        whole set would take too long; the time for the whole set is then extrapolated.
        ``None`` or a number >= the object count means the whole set.
    """

    name: str
    kind: str  # "songs" | "events"
    spec: GeneratorSpec
    group: str = "main"  # "main" | "growth"
    samples: dict[str, int | None] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        return KINDS[self.kind][0]

    @property
    def table(self) -> str:
        return KINDS[self.kind][1]

    @property
    def key(self) -> str:
        return f"{self.name}-{self.spec.digest()}"


@dataclass
class Prepared:
    """A dataset on disk and in S3."""

    dataset: Dataset
    folder: Path
    bucket: str
    keys: list[str]  # sorted, as list_keys returns them
    rows_by_key: dict[str, int]
    total_bytes: int

    @property
    def rows(self) -> int:
        return sum(self.rows_by_key.values())


# --------------------------------------------------------------------------- generation


def _count_rows(path: Path) -> int:
    with open(path, "rb") as handle:
        return sum(1 for line in handle if line.strip())


def ensure_generated(dataset: Dataset, data_dir: Path, log=print) -> tuple[Path, dict]:
    """The dataset's folder and manifest, generated once per spec (cached by its hash)."""
    folder = data_dir / dataset.key
    manifest_path = folder / "manifest.json"
    if manifest_path.exists():
        return folder, json.loads(manifest_path.read_text())
    from dev.sample_data import generate

    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    log(f"  generating {dataset.name}: sample_data {dataset.spec.cli()} -> {folder}")
    summary = generate(partial, dataset.spec.sample_spec())
    root = partial / dataset.prefix
    files = sorted(p for p in root.rglob("*.json") if p.is_file())
    rows = {p.relative_to(partial).as_posix(): _count_rows(p) for p in files}
    manifest = {
        "name": dataset.name,
        "spec": asdict(dataset.spec),
        "generator_cli": f"python -m dev.sample_data {dataset.spec.cli()}",
        "summary": {k: str(v) for k, v in asdict(summary).items()},
        "prefix": dataset.prefix,
        "objects": len(rows),
        "bytes": sum(p.stat().st_size for p in files),
        "rows": sum(rows.values()),
        "rows_by_key": rows,
    }
    (partial / "manifest.json").write_text(json.dumps(manifest, indent=1))
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return folder, manifest


# --------------------------------------------------------------------------- S3


def s3_client(workers: int = 32) -> Any:
    """A boto3 client of the local S3 API (the credentials of airflow_settings.yaml)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=S3_ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id="local-access-key",
        aws_secret_access_key="local-secret-key",
        config=Config(max_pool_connections=workers),
    )


def bucket_name(*parts: str) -> str:
    name = "-".join(["bench", *parts]).lower().replace("_", "-")
    if len(name) > 63:
        raise ValueError(f"bucket name {name!r} is longer than 63 characters")
    return name


def listed_keys(client: Any, bucket: str, prefix: str = "") -> list[str]:
    paginator = client.get_paginator("list_objects_v2")
    return [
        item["Key"]
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", ())
    ]


def _ensure_bucket(client: Any, bucket: str) -> None:
    if not bucket.startswith("bench-"):
        raise ValueError(f"the benchmark only touches bench-* buckets, not {bucket!r}")
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        client.create_bucket(Bucket=bucket)


def _empty(client: Any, bucket: str, keys: Sequence[str]) -> None:
    for start in range(0, len(keys), 1000):
        batch = [{"Key": k} for k in keys[start : start + 1000]]
        client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})


def ensure_uploaded(
    client: Any, folder: Path, bucket: str, keys: Sequence[str], log=print, workers: int = 32
) -> bool:
    """Upload ``keys`` (paths under ``folder``) unless the bucket holds as many objects.

    Returns True when it uploaded. ``put_object`` of whole files: moto assembles multipart
    uploads slowly, and the largest object here is ~40 MB.
    """
    _ensure_bucket(client, bucket)
    present = listed_keys(client, bucket)
    if len(present) == len(keys):
        return False
    _empty(client, bucket, present)
    log(f"  uploading {len(keys):,} objects to s3://{bucket}")

    def put(key: str) -> None:
        client.put_object(Bucket=bucket, Key=key, Body=(folder / key).read_bytes())

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(put, keys))
    return True


def sample_keys(keys: Sequence[str], count: int) -> list[str]:
    """``count`` keys spread evenly over the sorted ``keys`` (all of them if fewer)."""
    if count >= len(keys):
        return list(keys)
    return [keys[i * len(keys) // count] for i in range(count)]


def ensure_sample_bucket(client: Any, source_bucket: str, keys: Sequence[str], log=print) -> str:
    """A bucket holding exactly ``keys`` copied from ``source_bucket`` (server-side)."""
    bucket = bucket_name(source_bucket.removeprefix("bench-"), f"s{len(keys)}")
    _ensure_bucket(client, bucket)
    present = sorted(listed_keys(client, bucket))
    if present == sorted(keys):
        return bucket
    _empty(client, bucket, present)
    log(f"  copying a sample of {len(keys)} objects to s3://{bucket}")

    def copy(key: str) -> None:
        client.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": source_bucket, "Key": key})

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(copy, keys))
    return bucket


def prepare(dataset: Dataset, data_dir: Path, client: Any, log=print) -> Prepared:
    folder, manifest = ensure_generated(dataset, data_dir, log)
    rows_by_key = manifest["rows_by_key"]
    keys = sorted(rows_by_key)
    bucket = bucket_name(dataset.key)
    ensure_uploaded(client, folder, bucket, keys, log)
    return Prepared(dataset, folder, bucket, keys, rows_by_key, manifest["bytes"])


# --------------------------------------------------------------------------- PostgreSQL


def dsn(database: str) -> str:
    return f"postgresql://{PG_USER}:{PG_PASSWORD}@{HOST}:{PG_PORT}/{database}"


def fresh_database(name: str, with_tables: bool = True) -> str:
    """(Re)create ``bench_*`` database ``name``, with the warehouse's tables by default."""
    import psycopg2

    from dev.local_stack.databases import drop_database
    from sparkify.sql import identifier, read_sql

    if not name.startswith("bench_"):
        raise ValueError(f"the benchmark only touches bench_* databases, not {name!r}")
    admin = psycopg2.connect(dsn("postgres"))
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            drop_database(cursor, identifier(name), name)
            cursor.execute(f"CREATE DATABASE {identifier(name)} OWNER {PG_USER}")
    finally:
        admin.close()
    if with_tables:
        conn = psycopg2.connect(dsn(name))
        try:
            with conn.cursor() as cursor:
                cursor.execute(read_sql("create_tables"))
            conn.commit()
        finally:
            conn.close()
    return name


def count_rows(database: str, table: str) -> int:
    import psycopg2

    from sparkify.sql import identifier

    conn = psycopg2.connect(dsn(database))
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM {identifier(table)}")  # noqa: S608
            return cursor.fetchone()[0]
    finally:
        conn.close()


def connection_environment(database: str, bucket: str | None = None) -> dict[str, str]:
    """The DAGs' connections and variables (airflow_settings.yaml) aimed at a bench database."""
    return environment(database, bucket)


def child_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a child process: the Makefile's Airflow settings plus ``extra``."""
    env = dict(os.environ)
    env.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(PROJECT_ROOT / "dags"))
    env.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(PROJECT_ROOT / "plugins"))
    env.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    env.setdefault("AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES", "airflow.* astro.*")
    paths = [str(PROJECT_ROOT / "include"), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env.update(extra or {})
    return env
