"""The staging benchmark's harness (dev/bench/), on tiny data: structure and rows, never speed."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from dev.bench.bench_staging import Config, config_from_args, parse_args, run_benchmark
from dev.bench.common import Dataset, GeneratorSpec, sample_keys

ENTRY_FIELDS = {
    "median_seconds": float,
    "rows": int,
    "rows_per_second": float,
    "peak_rss_mb": float,
    "ratio_to_floor": float,
    "runs": int,
    "extrapolated": bool,
    "sample_objects": int,
    "total_objects": int,
    "seconds": list,
    "rows_verified": bool,
}


def tiny_datasets() -> list[Dataset]:
    def events(days: int) -> GeneratorSpec:
        return GeneratorSpec(songs=20, days=days, events_per_day=(40, 60), seed=3)

    return [
        # (b) on a sample: the extrapolation path.
        Dataset(
            "pytest-songs",
            "songs",
            GeneratorSpec(songs=12, days=1, events_per_day=(5, 5), seed=3),
            samples={"b": 4},
        ),
        Dataset("pytest-events-1x", "events", events(1), group="growth"),
        Dataset("pytest-events-2x", "events", events(2), group="growth"),
    ]


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("bench")
    config = Config(
        datasets=tiny_datasets(),
        scale="quick",
        runs=1,
        database="bench_pytest",
        data_dir=folder / "data",
        out=folder / "results.json",
        logs_dir=folder / "logs",
    )
    run_benchmark(config, log=lambda *args: None)
    return json.loads(config.out.read_text())


@pytest.mark.stack
def test_every_dataset_and_method_has_the_documented_fields(results):
    assert set(results) >= {"meta", "datasets", "results", "growth", "problems", "markdown"}
    assert [d["name"] for d in results["datasets"]] == [d.name for d in tiny_datasets()]
    for dataset in results["datasets"]:
        by_method = results["results"][dataset["name"]]
        assert sorted(by_method) == ["a", "b", "c", "d"]
        for method, entry in by_method.items():
            for name, kind in ENTRY_FIELDS.items():
                assert isinstance(entry[name], kind), (dataset["name"], method, name)
            assert entry["runs"] == 1 and len(entry["seconds"]) == 1
            # the COPY's backend works for every load; all cores' busy share is a share
            assert entry["postgres_server_cpu_seconds"] > 0, (dataset["name"], method)
            assert 0 < entry["machine_busy_share"] <= 1, (dataset["name"], method)
        assert by_method["d"]["ratio_to_floor"] == 1.0
        assert dataset["warm_read_seconds"] > 0  # every object read once before the runs


@pytest.mark.stack
def test_all_methods_load_the_same_rows(results):
    assert results["problems"] == []
    for dataset in results["datasets"]:
        by_method = results["results"][dataset["name"]]
        floor = by_method["d"]
        assert floor["rows"] == dataset["rows"] > 0
        for method, entry in by_method.items():
            assert entry["rows_verified"], (dataset["name"], method, entry["rows_loaded"])
            assert entry["rows"] == floor["rows"], (dataset["name"], method)
            if not entry["extrapolated"]:
                assert entry["rows_loaded"] == [floor["rows"]]
                assert entry["rows_match_floor"] is True


@pytest.mark.stack
def test_a_sampled_method_is_marked_extrapolated(results):
    songs = results["results"]["pytest-songs"]
    assert songs["b"]["extrapolated"] is True
    assert (songs["b"]["sample_objects"], songs["b"]["total_objects"]) == (4, 12)
    assert songs["b"]["rows_loaded"] == [4]
    assert not any(songs[m]["extrapolated"] for m in "acd")
    assert "extrapolated from 4 of 12 objects" in results["markdown"]


@pytest.mark.stack
def test_growth_curve_is_relative_to_the_smallest_size(results):
    curve = results["growth"]
    assert [p["dataset"] for p in curve] == ["pytest-events-1x", "pytest-events-2x"]
    assert curve[0]["rows"] < curve[1]["rows"]
    assert all(value == 1.0 for value in curve[0]["relative_to_first"].values())
    assert sorted(curve[1]["seconds"]) == ["a", "b", "c", "d"]


def test_quick_mode_is_tiny_with_one_run():
    config = config_from_args(parse_args(["--quick"]))
    assert (config.scale, config.runs) == ("quick", 1)
    assert {d.group for d in config.datasets} == {"main", "growth"}
    full = config_from_args(parse_args([]))
    assert (full.scale, full.runs) == ("full", 3)
    with pytest.raises(SystemExit):  # the backfills are dev/bench/backfill.py's
        parse_args(["--no-backfill"])


def test_samples_are_spread_over_the_keys():
    keys = [f"k{i:02}" for i in range(10)]
    assert sample_keys(keys, 5) == ["k00", "k02", "k04", "k06", "k08"]
    assert sample_keys(keys, 20) == keys


# --------------------------------------------------------------------------- the floor (d)


def test_a_row_plan_maps_keys_case_blind_and_missing_ones_to_null():
    from dev.bench.methods import row_plan

    columns = ["userid", "ts", "song"]
    full = row_plan(("song", "userId", "ts"), columns)
    assert full({"song": "s", "userId": "7", "ts": 1}) == ("7", 1, "s")
    partial = row_plan(("userId", "ts"), columns)
    assert partial({"userId": "7", "ts": 1}) == ("7", 1, None)
    assert row_plan(("TS",), ["ts"])({"TS": 5}) == (5,)


def _expected_rows(folder, keys, columns):
    rows = Counter()
    for key in keys:
        for line in (folder / key).read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = {k.lower(): v for k, v in json.loads(line).items()}
                rows[tuple(key if c == "source_key" else record.get(c) for c in columns)] += 1
    return rows


@pytest.mark.stack
@pytest.mark.parametrize("copy_format", ["binary", "text"])
@pytest.mark.parametrize("kind", ["events", "songs"])
def test_the_floor_loads_exactly_the_generated_records(tmp_path, kind, copy_format):
    import psycopg2

    from dev.bench.common import dsn, fresh_database, prepare, s3_client
    from dev.bench.methods import run_job

    spec = GeneratorSpec(songs=15, days=2, events_per_day=(30, 40), seed=5)
    dataset = Dataset(f"pytest-floor-{kind}", kind, spec)
    prepared = prepare(dataset, tmp_path / "data", s3_client(), log=lambda *a: None)
    database = fresh_database("bench_pytest_floor")
    job = {
        "method": "d",
        "bucket": prepared.bucket,
        "prefix": dataset.prefix,
        "table": dataset.table,
        "database": database,
        "copy_format": copy_format,
    }
    result = run_job(job)
    assert result["rows"] == result["rows_reported"] == prepared.rows > 0
    assert result["objects"] == len(prepared.keys)

    conn = psycopg2.connect(dsn(database))
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = "
                "'public' AND table_name = %s ORDER BY ordinal_position",
                (dataset.table,),
            )
            columns = [row[0] for row in cursor]
            cursor.execute(f"SELECT {', '.join(columns)} FROM {dataset.table}")
            loaded = cursor.fetchall()
    finally:
        conn.close()
    assert len(loaded) == prepared.rows
    assert Counter(loaded) == _expected_rows(prepared.folder, prepared.keys, columns)
