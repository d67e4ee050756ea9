"""Helpers for tests that use the real local stack: throwaway databases and buckets.

Tests never touch the `sparkify` database or the `sparkify-local` bucket that `make run`
leaves up for people to look at: each test module works in its own database and bucket,
and Airflow is pointed at them through `AIRFLOW_CONN_*` environment variables built from
airflow_settings.yaml (environment connections take precedence over the metadata DB).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg2

from dev.local_stack.airflow_settings import environment
from dev.local_stack.databases import drop_database
from dev.local_stack.seed_s3 import s3_client
from dev.local_stack.stack import HOST, PG_PASSWORD, PG_PORT, PG_USER, S3_PORT
from sparkify.sql import identifier, read_sql

S3_ENDPOINT = f"http://{HOST}:{S3_PORT}"


def dsn(database: str) -> str:
    return f"postgresql://{PG_USER}:{PG_PASSWORD}@{HOST}:{PG_PORT}/{database}"


@contextmanager
def connect(database: str) -> Iterator[Any]:
    conn = psycopg2.connect(dsn(database))
    try:
        yield conn
    finally:
        conn.close()


def fresh_database(name: str, with_tables: bool = True) -> str:
    """(Re)create database ``name`` owned by the sparkify role, with the warehouse's tables."""
    admin = psycopg2.connect(dsn("sparkify"))
    admin.autocommit = True
    with admin.cursor() as cursor:
        drop_database(cursor, identifier(name), name)
        cursor.execute(f"CREATE DATABASE {identifier(name)} OWNER {PG_USER}")
    admin.close()
    if with_tables:
        with connect(name) as conn, conn.cursor() as cursor:
            cursor.execute(read_sql("create_tables"))
            conn.commit()
    return name


def fresh_bucket(name: str) -> Any:
    """An empty bucket ``name`` in the local S3 API; returns a boto3 client."""
    client = s3_client(S3_ENDPOINT)
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if name in existing:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", ())]
            if keys:
                client.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
    else:
        client.create_bucket(Bucket=name)
    return client


def upload_folder(client: Any, bucket: str, folder: Path) -> int:
    paths = [p for p in sorted(folder.rglob("*")) if p.is_file()]
    for path in paths:
        client.upload_file(str(path), bucket, path.relative_to(folder).as_posix())
    return len(paths)


def connection_environment(
    database: str,
    bucket: str | None = None,
    s3_endpoint: str | None = None,
    s3_secret: str | None = None,
) -> dict[str, str]:
    """The DAGs' connections and variables aimed at ``database`` and ``bucket``."""
    return environment(database, bucket, s3_endpoint=s3_endpoint, s3_secret=s3_secret)


# Each star table's key: the order the e2e tests compare whole tables in.
STAR_TABLE_KEYS = {
    "songplays": ["songplay_id"],
    "users": ["user_id"],
    "songs": ["song_id"],
    "artists": ["artist_id"],
    "time": ["start_time"],
}


def table_rows(database: str, table: str, order_by: Sequence[str]) -> list[tuple]:
    """Every row of ``table``, ordered: for comparing whole tables."""
    order = ", ".join(identifier(c) for c in order_by)
    with connect(database) as conn, conn.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {identifier(table)} ORDER BY {order}")
        return cursor.fetchall()


def count_rows(database: str, table: str) -> int:
    with connect(database) as conn, conn.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {identifier(table)}")
        return cursor.fetchone()[0]
