"""Benchmarks of the staging step (issue 3): ``python -m dev.bench.bench_staging``."""
