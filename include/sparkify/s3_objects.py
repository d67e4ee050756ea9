"""Finding and reading Sparkify's objects in S3: prefixes, daily log keys, line streams."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

_S3_URL = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])/(?P<key>[^'\\]*)$")


class MissingObjectsError(FileNotFoundError):
    """Objects the run needs are not in S3; the message lists them."""


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ``("bucket", "some/prefix")``, validated.

    Quotes and backslashes are refused: the URL ends up in a Redshift COPY statement.
    """
    match = _S3_URL.match(url)
    if not match:
        raise ValueError(f"{url!r} is not an s3://bucket/key URL (no quotes or backslashes)")
    return match["bucket"], match["key"]


def _as_utc(moment: datetime) -> datetime:
    # A naive datetime is UTC here, as in the warehouse's interval parameters.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def days_in_interval(start: datetime, end: datetime) -> list[date]:
    """The UTC days that ``[start, end)`` touches: one for a daily or hourly run."""
    first = _as_utc(start).date()
    last = (_as_utc(end) - timedelta(microseconds=1)).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def interval_keys(template: str, start: datetime, end: datetime) -> list[str]:
    """Keys of the daily files covering ``[start, end)``, from a strftime ``template``."""
    return [day.strftime(template) for day in days_in_interval(start, end)]


def list_etags(client: Any, bucket: str, prefix: str, suffix: str = ".json") -> dict[str, str]:
    """Key -> ETag of every object under ``prefix`` ending in ``suffix``; one listing."""
    paginator = client.get_paginator("list_objects_v2")
    return {
        item["Key"]: item.get("ETag", "")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", ())
        if item["Key"].endswith(suffix)
    }


def list_keys(client: Any, bucket: str, prefix: str, suffix: str = ".json") -> list[str]:
    """Every key under ``prefix`` ending in ``suffix``, sorted; one paginated listing."""
    return sorted(list_etags(client, bucket, prefix, suffix))


def existing_keys(client: Any, bucket: str, keys: Iterable[str]) -> tuple[list[str], list[str]]:
    """Split ``keys`` into (present, missing), listing each distinct folder once."""
    wanted = list(keys)
    folders = {key.rsplit("/", 1)[0] + "/" if "/" in key else "" for key in wanted}
    present_all = {k for folder in folders for k in list_keys(client, bucket, folder, suffix="")}
    present = [k for k in wanted if k in present_all]
    missing = [k for k in wanted if k not in present_all]
    return present, missing


def line_blocks(
    client: Any, bucket: str, chunk_size: int = 1 << 17
) -> Callable[[str], Iterator[bytes]]:
    """A function that streams one object as blocks of whole lines (from worker threads).

    Each block is one or more lines joined by ``\n``, cut at the last line end of each
    ``chunk_size`` piece the body gives: lines are not split one by one in Python (the
    loader decodes a block in one call and counts its lines in C). A ``\r`` before a
    ``\n`` stays; JSON reads it as white space.
    """

    def read_blocks(key: str) -> Iterator[bytes]:
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
        try:
            pending: list[bytes] = []  # the start of a line the next pieces end
            for piece in body.iter_chunks(chunk_size):
                end = piece.rfind(b"\n")
                if end < 0:
                    pending.append(piece)
                    continue
                yield b"".join([*pending, piece[:end]]) if pending else piece[:end]
                pending = [piece[end + 1 :]]
            rest = b"".join(pending)
            if rest:
                yield rest
        finally:
            body.close()

    return read_blocks
