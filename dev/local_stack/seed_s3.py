"""Upload a folder in Sparkify's layout (``song_data/``, ``log_data/``) to the local S3 API.

    python -m dev.local_stack.seed_s3 FOLDER [--bucket NAME] [--endpoint URL]

The bucket is created when missing and emptied of the two prefixes first, so the bucket
mirrors the folder. Uploads run concurrently (thousands of small song files).
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from dev.local_stack.stack import HOST, S3_BUCKET, S3_PORT

PREFIXES = ("song_data", "log_data")


def s3_client(endpoint_url: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="local-access-key",
        aws_secret_access_key="local-secret-key",
        config=Config(max_pool_connections=32),
    )


def folder_objects(folder: Path) -> list[tuple[Path, str]]:
    """(file, key) pairs of every ``.json`` file under the folder's two prefixes."""
    pairs = []
    for prefix in PREFIXES:
        root = folder / prefix
        if root.is_dir():
            pairs += [(p, p.relative_to(folder).as_posix()) for p in sorted(root.rglob("*.json"))]
    if not pairs:
        raise FileNotFoundError(
            f"{folder} holds no .json files under {' or '.join(p + '/' for p in PREFIXES)}"
        )
    return pairs


def seed(folder: Path, bucket: str, endpoint_url: str, workers: int = 32) -> int:
    client = s3_client(endpoint_url)
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        client.create_bucket(Bucket=bucket)
    paginator = client.get_paginator("list_objects_v2")
    for prefix in PREFIXES:
        for page in paginator.paginate(Bucket=bucket, Prefix=f"{prefix}/"):
            stale = [{"Key": item["Key"]} for item in page.get("Contents", ())]
            if stale:
                client.delete_objects(Bucket=bucket, Delete={"Objects": stale, "Quiet": True})
    pairs = folder_objects(folder)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda pair: client.upload_file(str(pair[0]), bucket, pair[1]), pairs))
    return len(pairs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--bucket", default=S3_BUCKET)
    parser.add_argument("--endpoint", default=f"http://{HOST}:{S3_PORT}")
    args = parser.parse_args(argv)
    count = seed(args.folder, args.bucket, args.endpoint)
    print(f"uploaded {count} objects from {args.folder} to s3://{args.bucket}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
