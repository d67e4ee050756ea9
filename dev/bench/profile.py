"""Profile one staging method with cProfile in every thread: where the loader's time goes.

    python -m dev.bench.profile --dataset events [--scale small] [--method a] [--top 10]

The loaders work in threads (32 GETs and parses, one COPY), and cProfile sees only the
thread it is started in: here each thread runs under its own profiler and the stats are
merged. The dataset is prepared as ``make bench`` does (same cache and bucket); the job
runs in this process after the same imports as ``dev.bench.methods``. cProfile's own
cost per call inflates call-heavy code: read the ranking, not the seconds.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from dev.bench.common import (
    BENCH_DIR,
    connection_environment,
    fresh_database,
    prepare,
    s3_client,
)


class ThreadProfiles:
    """cProfile in each thread started while active (and in this one); merged stats.

    Each profiler clocks its thread's CPU time (``time.thread_time``): a thread waiting on
    a socket or a queue costs nothing, so the ranking is of what keeps the interpreter
    (and its GIL) busy.
    """

    def __init__(self) -> None:
        self._profiles: list[cProfile.Profile] = []
        self._lock = threading.Lock()
        self._original_run = threading.Thread.run

    def __enter__(self) -> ThreadProfiles:
        profiles, lock, original = self._profiles, self._lock, self._original_run

        def run(thread: threading.Thread) -> None:
            profile = cProfile.Profile(time.thread_time)
            with lock:
                profiles.append(profile)
            profile.enable()
            try:
                original(thread)
            finally:
                profile.disable()

        threading.Thread.run = run  # type: ignore[method-assign]
        self._main = cProfile.Profile(time.thread_time)
        self._profiles.append(self._main)
        self._main.enable()
        return self

    def __exit__(self, *exc: object) -> None:
        self._main.disable()
        threading.Thread.run = self._original_run  # type: ignore[method-assign]

    def stats(self) -> pstats.Stats:
        stream = io.StringIO()
        with self._lock:
            first, *rest = self._profiles
            stats = pstats.Stats(first, stream=stream)
            for profile in rest:
                stats.add(profile)
        return stats


def top_functions(stats: pstats.Stats, count: int = 10, key: str = "tottime") -> list[dict]:
    """The ``count`` functions with the most own time (``tottime``) or cumulative time."""
    rows = []
    for (filename, line, name), (_cc, calls, tottime, cumtime, _) in stats.stats.items():
        rows.append(
            {
                "function": f"{Path(filename).name}:{line}({name})",
                "calls": calls,
                "tottime": tottime,
                "cumtime": cumtime,
            }
        )
    rows.sort(key=lambda r: r[key], reverse=True)
    return rows[:count]


def main(argv: Sequence[str] | None = None) -> int:
    from dev.bench.bench_staging import datasets_for
    from dev.bench.methods import METHODS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=["quick", "small", "full"], default="small")
    parser.add_argument("--dataset", default="events")
    parser.add_argument("--method", default="a", choices=sorted(METHODS))
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--out", type=Path, help="also write the raw stats (pstats) here")
    args = parser.parse_args(argv)

    dataset = next((d for d in datasets_for(args.scale) if d.name == args.dataset), None)
    if dataset is None:
        parser.error(f"no dataset {args.dataset!r} at scale {args.scale}")
    prepared = prepare(dataset, BENCH_DIR / "data", s3_client())
    database = fresh_database("bench_profile")
    job = {
        "method": args.method,
        "bucket": prepared.bucket,
        "prefix": dataset.prefix,
        "table": dataset.table,
        "database": database,
    }
    os.environ.update(connection_environment(database))
    load = METHODS[args.method](job)
    started = time.perf_counter()
    with ThreadProfiles() as profiles:
        load()
    seconds = time.perf_counter() - started
    stats = profiles.stats()
    if args.out:
        stats.dump_stats(str(args.out))
    print(
        f"method ({args.method}) on {dataset.name} ({prepared.total_bytes / 1e6:,.1f} MB, "
        f"{prepared.rows:,} rows): {seconds:.1f} s under cProfile, CPU time of all threads"
    )
    print("\n| # | function | calls | own CPU s | cumulative CPU s |\n|---:|---|---:|---:|---:|")
    for number, row in enumerate(top_functions(stats, args.top), start=1):
        print(
            f"| {number} | `{row['function']}` | {row['calls']:,} | {row['tottime']:.2f} "
            f"| {row['cumtime']:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
