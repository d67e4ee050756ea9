"""Benchmark of the staging step (issue 3): four ways of loading S3 JSON into PostgreSQL.

    python -m dev.bench.bench_staging [--scale small|full] [--quick] [--runs N]
        [--methods abcd] [--datasets songs,events,...]

For each dataset (generated with the project's generator, cached under
``.local/bench/data``, one ``bench-*`` bucket each in the local S3 API) every method
(see ``dev/bench/methods.py``) stages it into the matching staging table of a ``bench_*``
database, each run in a fresh process; the median of the runs, rows, rows/s, peak RSS
and the ratio to the I/O floor (d) measured in the same invocation are printed as
Markdown and written to ``dev/bench/results/latest.json``. Methods (b) and (c) load an
evenly spread sample of the objects where the whole set would take too long; their
whole-set time is then extrapolated by rows and marked so. The backfills through
Airflow are a separate benchmark: ``python -m dev.bench.backfill``.

Needs the local stack (``make stack``); ``make bench`` starts it and runs this.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from dev.bench.common import (
    BENCH_DIR,
    PROJECT_ROOT,
    Dataset,
    GeneratorSpec,
    Prepared,
    child_environment,
    connection_environment,
    ensure_sample_bucket,
    fresh_database,
    prepare,
    s3_client,
    sample_keys,
)
from dev.bench.cpu import MachineCpu, process_cpu_seconds, tree_cpu_seconds
from dev.bench.methods import METHOD_LABELS, METHOD_NAMES
from dev.local_stack.stack import postgres_status, s3_status

RESULTS_DIR = PROJECT_ROOT / "dev" / "bench" / "results"
FLOOR = "d"
SAMPLED_METHODS = ("b", "c")


# --------------------------------------------------------------------------- datasets


def _events(days: int, low: int, high: int, songs: int) -> GeneratorSpec:
    return GeneratorSpec(songs=songs, days=days, events_per_day=(low, high))


def datasets_for(scale: str) -> list[Dataset]:
    """The datasets of a scale: ``full`` (issue 3's sizes), ``small`` or ``quick``.

    ``samples`` caps the objects (b) and (c) load where the whole set would take long
    (measured here: ~0.3 s per song file for (b), ~40 ms for (c); ~0.13 s and ~0.22 s
    per MB of events); their whole-set time is extrapolated from the sample.
    """
    if scale == "full":
        # songs: 15,000 one-song files; events: 30 daily logs, ~1.05 GB; growth: ~24,
        # ~48, ~97 MB of 4.8 MB daily logs (the generator writes ~460 bytes per event).
        songs = GeneratorSpec(songs=15000, days=1, events_per_day=(15, 15))
        main = [
            Dataset("songs", "songs", songs, samples={"b": 60, "c": 500}),
            Dataset("events", "events", _events(30, 70000, 80000, 15000), samples={"b": 3, "c": 3}),
        ]
        growth = [(1, 5), (2, 10), (4, 20)]
        growth_samples: dict[str, int | None] = {"b": None, "c": None}
        per_day, growth_songs = (10000, 11000), 15000
    elif scale == "small":
        songs = GeneratorSpec(songs=3000, days=1, events_per_day=(15, 15))
        main = [
            Dataset("songs", "songs", songs, samples={"b": 60, "c": 400}),
            Dataset("events", "events", _events(30, 7000, 8000, 3000), samples={"b": 5, "c": 5}),
        ]
        growth = [(1, 2), (2, 4), (4, 8)]
        growth_samples = {"b": None, "c": None}
        per_day, growth_songs = (5000, 5500), 3000
    elif scale == "quick":
        songs = GeneratorSpec(songs=200, days=1, events_per_day=(15, 15))
        main = [
            # (b) on a sample even here, so that the extrapolation is exercised.
            Dataset("songs", "songs", songs, samples={"b": 20, "c": None}),
            Dataset("events", "events", _events(2, 1500, 2000, 200)),
        ]
        growth = [(1, 1), (2, 2), (4, 4)]
        growth_samples = {}
        per_day, growth_songs = (300, 400), 200
    else:
        raise ValueError(f"unknown scale {scale!r}: full, small or quick")
    return main + [
        Dataset(
            f"events-{factor}x",
            "events",
            _events(days, *per_day, growth_songs),
            group="growth",
            samples=dict(growth_samples),
        )
        for factor, days in growth
    ]


# --------------------------------------------------------------------------- config


@dataclass
class Config:
    datasets: list[Dataset]
    scale: str = "full"
    methods: str = "abcd"
    runs: int = 3
    database: str = "bench_staging"
    data_dir: Path = BENCH_DIR / "data"
    out: Path | None = RESULTS_DIR / "latest.json"
    logs_dir: Path = BENCH_DIR / "logs"
    extra_meta: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- one run


def _server_cpu_seconds() -> dict[str, float | None]:
    """CPU time so far of the S3 API and of the whole PostgreSQL server (the postmaster's
    tree), each found as ``make stop`` finds it; None for one that is not running."""
    s3, postgres = s3_status().pid, postgres_status().pid
    return {
        "s3": None if s3 is None else process_cpu_seconds(s3),
        "postgres": None if postgres is None else tree_cpu_seconds(postgres),
    }


def warm_objects(client: Any, keys_by_bucket: dict[str, Sequence[str]]) -> float:
    """Read every object the runs will read once, untimed; returns the seconds it took.

    The local S3 API spools big objects to temporary files: the first reader after the
    page cache lost them waits for the disk (run 1 of (a) took 76 s where its others took
    20-28 s, its CPU unchanged), and run 1 always starts with the same method.
    """
    from concurrent.futures import ThreadPoolExecutor

    started = time.perf_counter()

    def read(bucket_key: tuple[str, str]) -> None:
        bucket, key = bucket_key
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
        for _ in body.iter_chunks(1 << 20):
            pass

    wanted = sorted({(b, k) for b, keys in keys_by_bucket.items() for k in keys})
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(read, wanted))
    return time.perf_counter() - started


def run_method(job: dict[str, Any], env: dict[str, str], log_path: Path) -> dict[str, Any]:
    """One run of one method in a fresh process; its result (see dev.bench.methods.run_job)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    result_path = log_path.with_suffix(".json")
    result_path.unlink(missing_ok=True)
    job = {**job, "result_path": str(result_path)}
    cpu_before, machine_before = _server_cpu_seconds(), MachineCpu.read()
    load_average = os.getloadavg()[0]
    with open(log_path, "w", encoding="utf-8") as out:
        code = subprocess.run(
            [sys.executable, "-m", "dev.bench.methods", json.dumps(job)],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        ).returncode
    # The job's backend ends with its connection: give the postmaster a moment to reap
    # it, so that its CPU time is in the postmaster's children's.
    time.sleep(0.2)
    cpu_after, machine = _server_cpu_seconds(), MachineCpu.read()
    if code != 0 or not result_path.exists():
        tail = log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise RuntimeError(f"method ({job['method']}) failed with exit code {code}:\n{tail}")
    result = json.loads(result_path.read_text())
    # Other processes on the machine slow the runs down: keep the 1-minute load average.
    result["load_average"] = load_average
    for name in ("s3", "postgres"):
        before, after = cpu_before[name], cpu_after[name]
        if before is not None and after is not None:
            result[f"{name}_server_cpu_seconds"] = after - before
    # How busy all the cores were, this run's processes and everyone else's: near 1, the
    # machine is the limit; near 1 / cores, one process (and its GIL) is.
    result["machine_busy_share"] = machine.busy_share_since(machine_before)
    return result


# --------------------------------------------------------------------------- summaries


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def summarize(
    prepared: Prepared, method: str, runs: list[dict[str, Any]], keys: list[str]
) -> dict[str, Any]:
    """Median and friends of one method on one dataset (whole set, extrapolated if sampled)."""
    expected = sum(prepared.rows_by_key[k] for k in keys)
    sampled = len(keys) < len(prepared.keys)
    seconds = [r["seconds"] for r in runs]
    measured = _median(seconds)
    whole = measured * prepared.rows / expected if sampled else measured

    def known(name: str) -> list[float]:
        return [r[name] for r in runs if r.get(name) is not None]

    return {
        "method": method,
        "name": METHOD_NAMES[method],
        "label": METHOD_LABELS[method],
        # Whole set: measured, or extrapolated from the sample by rows when "extrapolated".
        "median_seconds": whole,
        "rows": prepared.rows if sampled else runs[len(runs) // 2]["rows"],
        "rows_per_second": prepared.rows / whole if whole else None,
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "baseline_rss_mb": _median([r["baseline_rss_mb"] for r in runs]),
        "children_peak_rss_mb": max(r.get("children_peak_rss_mb", 0.0) for r in runs),
        "ratio_to_floor": None,
        "runs": len(runs),
        "seconds": seconds,
        "extrapolated": sampled,
        "sample_objects": len(keys),
        "total_objects": len(prepared.keys),
        "sample_rows": expected,
        "sample_median_seconds": measured,
        "rows_loaded": [r["rows"] for r in runs],
        "rows_expected": expected,
        "rows_verified": all(r["rows"] == expected for r in runs),
        "rows_match_floor": None,
        "cpu_seconds": _median([r["cpu_seconds"] for r in runs]),
        "s3_server_cpu_seconds": _median(known("s3_server_cpu_seconds")),
        "postgres_server_cpu_seconds": _median(known("postgres_server_cpu_seconds")),
        "machine_busy_share": _median(known("machine_busy_share")),
        "load_average": [r["load_average"] for r in runs],
    }


def _add_floor_ratios(results: dict[str, dict[str, Any]]) -> None:
    floor = results.get(FLOOR)
    for entry in results.values():
        if floor and floor["median_seconds"]:
            entry["ratio_to_floor"] = entry["median_seconds"] / floor["median_seconds"]
        if floor and not entry["extrapolated"]:
            entry["rows_match_floor"] = entry["rows"] == floor["rows"]


def growth_curve(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Seconds per method at each growth size, and each relative to the smallest."""
    points = [d for d in doc["datasets"] if d["group"] == "growth"]
    curve = []
    for point in points:
        results = doc["results"].get(point["name"], {})
        curve.append(
            {
                "dataset": point["name"],
                "mb": point["bytes"] / 1e6,
                "rows": point["rows"],
                "seconds": {m: r["median_seconds"] for m, r in results.items()},
                "extrapolated": {m: r["extrapolated"] for m, r in results.items()},
            }
        )
    if curve:
        base = curve[0]["seconds"]
        for point in curve:
            point["relative_to_first"] = {
                m: s / base[m] for m, s in point["seconds"].items() if base.get(m)
            }
    return curve


# --------------------------------------------------------------------------- the benchmark


def _meta(config: Config) -> dict[str, Any]:
    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    def git(*args: str) -> str:
        run = subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True)
        return run.stdout.strip()

    return {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "scale": config.scale,
        "runs": config.runs,
        "methods": {m: METHOD_LABELS[m] for m in config.methods},
        "commit": git("rev-parse", "--short", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "versions": {
            p: version(p)
            for p in (
                "apache-airflow",
                "astro-sdk-python",
                "pandas",
                "boto3",
                "psycopg2-binary",
                "psycopg",
                "psycopg-binary",
                "orjson",
                "msgspec",
            )
        },
        "database": config.database,
        **config.extra_meta,
    }


def run_benchmark(config: Config, log=print) -> dict[str, Any]:
    """Prepare every dataset, run every method ``runs`` times, summarize; the results doc."""
    began = time.perf_counter()
    doc: dict[str, Any] = {"meta": _meta(config), "datasets": [], "results": {}, "problems": []}
    client = s3_client()
    log(f"Preparing {len(config.datasets)} dataset(s) under {config.data_dir}")
    prepared = [prepare(d, config.data_dir, client, log) for d in config.datasets]
    fresh_database(config.database)
    env = child_environment(connection_environment(config.database))
    doc["meta"]["setup_seconds"] = time.perf_counter() - began
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")

    for item in prepared:
        dataset = item.dataset
        doc["datasets"].append(
            {
                "name": dataset.name,
                "group": dataset.group,
                "kind": dataset.kind,
                "table": dataset.table,
                "bucket": item.bucket,
                "objects": len(item.keys),
                "bytes": item.total_bytes,
                "rows": item.rows,
                "generator": f"python -m dev.sample_data {dataset.spec.cli()}",
            }
        )
        jobs = {}
        for method in config.methods:
            keys = item.keys
            bucket = item.bucket
            limit = dataset.samples.get(method) if method in SAMPLED_METHODS else None
            if limit is not None and limit < len(item.keys):
                keys = sample_keys(item.keys, limit)
                bucket = ensure_sample_bucket(client, item.bucket, keys, log)
            jobs[method] = (keys, bucket)
        warmed = warm_objects(client, {bucket: keys for keys, bucket in jobs.values()})
        log(
            f"\n{dataset.name}: {len(item.keys):,} objects, {item.total_bytes / 1e6:,.1f} MB, "
            f"{item.rows:,} rows -> {dataset.table} (every object read once first, untimed: "
            f"{warmed:.1f} s)"
        )
        doc["datasets"][-1]["warm_read_seconds"] = warmed
        runs: dict[str, list[dict[str, Any]]] = {m: [] for m in config.methods}
        for index in range(config.runs):
            shift = index % len(config.methods)
            for method in config.methods[shift:] + config.methods[:shift]:
                keys, bucket = jobs[method]
                job = {
                    "method": method,
                    "bucket": bucket,
                    "prefix": dataset.prefix,
                    "table": dataset.table,
                    "database": config.database,
                }
                name = f"{stamp}-{dataset.name}-{method}-{index + 1}"
                result = run_method(job, env, config.logs_dir / f"{name}.log")
                runs[method].append(result)
                expected = sum(item.rows_by_key[k] for k in keys)
                sampled = len(keys) < len(item.keys)
                flag = "" if result["rows"] == expected else f"  ROWS != {expected:,}!"
                log(
                    f"  run {index + 1} ({method}) {METHOD_NAMES[method]:8} "
                    f"{result['seconds']:8.2f} s  {result['rows']:>10,} rows  "
                    f"{result['peak_rss_mb']:7.0f} MB"
                    + (f"  [{len(keys)} of {len(item.keys)} objects]" if sampled else "")
                    + flag
                )
        results = {m: summarize(item, m, runs[m], jobs[m][0]) for m in config.methods}
        _add_floor_ratios(results)
        for method, entry in results.items():
            if not entry["rows_verified"]:
                doc["problems"].append(
                    f"{dataset.name} ({method}): loaded {entry['rows_loaded']} rows, "
                    f"expected {entry['rows_expected']:,}"
                )
            if entry["rows_match_floor"] is False:
                doc["problems"].append(
                    f"{dataset.name} ({method}): {entry['rows']:,} rows, the floor loaded "
                    f"{results[FLOOR]['rows']:,}"
                )
        doc["results"][dataset.name] = results

    doc["growth"] = growth_curve(doc)
    doc["meta"]["total_seconds"] = time.perf_counter() - began
    doc["markdown"] = render_markdown(doc)
    if config.out:
        config.out.parent.mkdir(parents=True, exist_ok=True)
        config.out.write_text(json.dumps(doc, indent=1) + "\n")
    return doc


# --------------------------------------------------------------------------- Markdown


def _num(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _percent(result: dict[str, Any]) -> str:
    share = result.get("machine_busy_share")
    return "-" if share is None else f"{share:.0%}"


def _load_range(doc: dict[str, Any]) -> str:
    results = [r for by_method in doc["results"].values() for r in by_method.values()]
    loads = [x for r in results for x in r["load_average"]]
    return f"{min(loads):.1f}-{max(loads):.1f}" if loads else "-"


def render_markdown(doc: dict[str, Any]) -> str:
    meta = doc["meta"]
    lines = [
        f"### Staging benchmark: scale `{meta['scale']}`, commit `{meta['commit']}`"
        f"{' (dirty)' if meta.get('dirty') else ''}, {meta['started_at']}, "
        f"{meta['cpus']} CPUs",
        "",
        "Seconds are the median of the runs for the whole dataset; `~` marks a time "
        "extrapolated (by rows) from a sample of the objects. x floor compares with (d) "
        "measured in the same invocation. CPU s: the loading process (all threads), "
        "the local S3 API server and the PostgreSQL server (backends and background "
        "processes) during the load (medians, measured, not extrapolated); machine busy: "
        "the share of all cores' time in use during the load, by anyone (median). "
        f"1-minute load average before the runs: {_load_range(doc)}.",
        "",
        "| dataset | method | seconds | rows | rows/s | peak RSS MB | x floor | runs "
        "| CPU s: proc / S3 API / PostgreSQL | machine busy | note |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    by_name = {d["name"]: d for d in doc["datasets"]}
    for name, results in doc["results"].items():
        info = by_name[name]
        title = f"{name} ({info['objects']:,} obj, {info['bytes'] / 1e6:,.1f} MB)"
        for method, r in results.items():
            notes = []
            if r["extrapolated"]:
                notes.append(
                    f"extrapolated from {r['sample_objects']:,} of {r['total_objects']:,} "
                    f"objects ({_num(r['sample_median_seconds'], 2)} s); RSS of the sample"
                )
            if not r["rows_verified"]:
                notes.append(f"ROWS WRONG: {r['rows_loaded']} vs {r['rows_expected']:,}")
            if r["rows_match_floor"] is False:
                notes.append("rows differ from (d)")
            mark = "~" if r["extrapolated"] else ""
            lines.append(
                f"| {title} | ({method}) {r['name']} | {mark}{_num(r['median_seconds'], 2)} "
                f"| {r['rows']:,} | {mark}{_num(r['rows_per_second'], 0)} "
                f"| {_num(r['peak_rss_mb'], 0)} | {mark}{_num(r['ratio_to_floor'], 2)} "
                f"| {r['runs']} | {_num(r['cpu_seconds'])} / {_num(r['s3_server_cpu_seconds'])}"
                f" / {_num(r.get('postgres_server_cpu_seconds'))} | {_percent(r)} "
                f"| {'; '.join(notes)} |"
            )
            title = ""
    if doc.get("growth"):
        methods = list(doc["growth"][0]["seconds"])
        lines += [
            "",
            "Growth (events at 1x, 2x, 4x): seconds, and in brackets relative to 1x",
            "",
            "| dataset | MB | rows | " + " | ".join(f"({m})" for m in methods) + " |",
            "|---|---:|---:|" + "---:|" * len(methods),
        ]
        for point in doc["growth"]:
            cells = []
            for m in methods:
                mark = "~" if point["extrapolated"][m] else ""
                rel = point.get("relative_to_first", {}).get(m)
                cells.append(f"{mark}{_num(point['seconds'][m], 2)} ({_num(rel, 2)}x)")
            lines.append(
                f"| {point['dataset']} | {point['mb']:,.1f} | {point['rows']:,} | "
                + " | ".join(cells)
                + " |"
            )
    total, setup = _num(meta.get("total_seconds"), 0), _num(meta.get("setup_seconds"), 0)
    lines += ["", f"Total time {total} s (setup: generation and upload {setup} s)."]
    if doc.get("problems"):
        lines += ["", "**Problems:**", *[f"- {p}" for p in doc["problems"]]]
    return "\n".join(lines)


# --------------------------------------------------------------------------- CLI


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=["small", "full"], default="full")
    parser.add_argument("--quick", action="store_true", help="tiny datasets, 1 run: a smoke test")
    parser.add_argument("--runs", type=int, help="runs per method (default 3; 1 with --quick)")
    parser.add_argument("--methods", default="abcd", help="subset of abcd (default: all)")
    parser.add_argument("--datasets", help="comma-separated dataset names (default: all)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "latest.json")
    return parser.parse_args(argv)


def config_from_args(args: argparse.Namespace, argv: Sequence[str] = ()) -> Config:
    scale = "quick" if args.quick else args.scale
    datasets = datasets_for(scale)
    if args.datasets:
        wanted = [name.strip() for name in args.datasets.split(",") if name.strip()]
        unknown = set(wanted) - {d.name for d in datasets}
        if unknown:
            raise SystemExit(f"unknown dataset(s) {sorted(unknown)}: {[d.name for d in datasets]}")
        datasets = [d for d in datasets if d.name in wanted]
    methods = "".join(m for m in "abcd" if m in args.methods)
    if not methods or set(args.methods) - set("abcd"):
        raise SystemExit(f"--methods takes letters of abcd, not {args.methods!r}")
    config = Config(
        datasets=datasets,
        scale=scale,
        methods=methods,
        runs=args.runs or (1 if args.quick else 3),
        out=args.out,
    )
    return replace(config, extra_meta={"argv": list(argv)})


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    config = config_from_args(parse_args(argv), argv)
    doc = run_benchmark(config)
    print("\n" + doc["markdown"])
    if config.out:
        print(f"\nWrote {config.out}")
    return 1 if doc["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
