"""End to end: the backfill on a PostgreSQL metadata DB, as `make run` and `make bench` run it.

Two days of the sample month through real Airflow (``dev.bench.backfill``: a private
``AIRFLOW_HOME``, a fresh metadata DB ``bench_e2e_airflow_meta``, the warehouse
``bench_e2e_backfill``, a copy of the DAG with only ``max_active_runs`` changed):

* the LocalExecutor (``make run BACKFILL_EXECUTOR=LocalExecutor``), one run at a time:
  every task in a forked process, both runs succeed;
* the DebugExecutor with both runs at once (``max_active_runs=2``): the runs are active
  together and every task of both runs runs. Their data may come out wrong (the loads
  share the staging tables), so only the scheduling is checked, not the checks' verdict.
"""

from __future__ import annotations

import pytest

from dev.bench.backfill import run_backfill_benchmark
from dev.bench.common import BENCH_DIR, s3_client

pytestmark = [pytest.mark.e2e, pytest.mark.stack]

TASKS = 12  # sparkify_etl's tasks


def backfill(tmp_path, **kwargs) -> dict:
    return run_backfill_benchmark(
        BENCH_DIR / "data",
        s3_client(),
        database="bench_e2e_backfill",
        days=2,
        metadata_database="bench_e2e_airflow_meta",
        airflow_home=tmp_path / "airflow",
        log=lambda *args: None,
        **kwargs,
    )


def test_the_local_executor_backfills_on_postgresql_metadata(tmp_path):
    result = backfill(tmp_path, max_active_runs=1, executor="LocalExecutor")
    assert result["ok"], f"see {result['log']}: {result['run_states']}"
    assert result["run_states"] == {"2018-11-01": "success", "2018-11-02": "success"}
    assert result["task_instances"] == 2 * TASKS
    assert result["parallelism"] == "8"
    # Forked, not a new interpreter: a task starts well within the scheduling pass.
    assert result["queue_delay_median_seconds"] is not None


def test_two_runs_at_once_run_every_task_of_both(tmp_path):
    result = backfill(tmp_path, max_active_runs=2, executor="DebugExecutor")
    assert result["exit_code"] in (0, 1), f"see {result['log']}"
    assert set(result["run_states"]) == {"2018-11-01", "2018-11-02"}
    assert set(result["run_states"].values()) <= {"success", "failed"}
    assert result["task_instances"] == 2 * TASKS
    assert result["max_active_runs"] == 2
    copy = (tmp_path / "airflow" / "dags" / "sparkify_etl.py").read_text(encoding="utf-8")
    assert "max_active_runs=2," in copy
