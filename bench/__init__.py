"""Benchmarks of the staging step (issue 3): ``python -m bench.bench_staging``."""
