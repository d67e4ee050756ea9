"""Fill the S3 API of the Docker path with a folder in Sparkify's layout, or with the sample.

``docker-compose.override.yml`` runs this once per ``astro dev start`` in the one-shot
service ``sparkify-seed`` (moto keeps its objects in memory only, so every start begins
with an empty bucket). The container is the Astro Runtime base image (Python, boto3 and
psutil, already pulled by the image build) with ``./dev`` mounted read-only and the
user's folder, if any, mounted at ``/data``:

* ``DATA`` holds ``song_data/`` or ``log_data/``: that folder is uploaded as it is;
* otherwise the seeded sample month of ``dev/sample_data.py`` is generated into a
  temporary directory and uploaded.

Uploading is ``dev/local_stack/seed_s3.py``'s (the bucket is created when missing and its
two prefixes emptied first, so the bucket mirrors the folder), the same code as
``make run`` natively.

    python -m dev.astro_cli.seed [--data DIR] [--bucket NAME] [--endpoint URL] [--wait S]
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from dev.sample_data import DEFAULT_SPEC, generate

PREFIXES = ("song_data", "log_data")
DEFAULT_ENDPOINT = "http://sparkify-s3:8002"
DEFAULT_BUCKET = "sparkify-local"


def has_sparkify_layout(folder: Path | None) -> bool:
    """True when ``folder`` holds at least one of ``song_data/`` and ``log_data/``."""
    return folder is not None and any((folder / prefix).is_dir() for prefix in PREFIXES)


def wait_for(endpoint: str, timeout: float) -> None:
    """Wait until ``endpoint``'s host:port accepts TCP connections (compose starts both)."""
    parts = urlsplit(endpoint)
    address = (parts.hostname or "localhost", parts.port or 80)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(address, timeout=1):
                return
        except OSError as error:
            if time.monotonic() >= deadline:
                raise SystemExit(
                    f"the S3 API at {endpoint} did not answer within {timeout:.0f} s ({error})"
                ) from None
            time.sleep(0.5)


def seed_folder(data: Path | None, bucket: str, endpoint: str) -> str:
    """Upload ``data`` (or the generated sample); returns one line saying what was loaded."""
    from dev.local_stack.seed_s3 import seed

    if has_sparkify_layout(data):
        assert data is not None
        count = seed(data, bucket, endpoint)
        return f"uploaded {count} objects from {data} to s3://{bucket} at {endpoint}"
    with tempfile.TemporaryDirectory(prefix="sparkify-sample-") as tmp:
        summary = generate(Path(tmp), DEFAULT_SPEC)
        count = seed(Path(tmp), bucket, endpoint)
    return (
        f"uploaded the sample ({summary.song_files} song files, {summary.log_files} daily log "
        f"files, {summary.first_day}..{summary.last_day}): {count} objects to s3://{bucket} "
        f"at {endpoint}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="folder in Sparkify's layout")
    parser.add_argument("--bucket", default=DEFAULT_BUCKET)
    parser.add_argument("--endpoint", default=DEFAULT_ENDPOINT)
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for S3")
    args = parser.parse_args(argv)
    if args.data is not None and not args.data.is_dir():
        parser.error(f"--data {args.data} is not a directory")
    wait_for(args.endpoint, args.wait)
    print(seed_folder(args.data, args.bucket, args.endpoint), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
