"""How `make run` drives the backfill: its command and environment (no Airflow started)."""

from __future__ import annotations

import importlib.util
import os
import sys
from datetime import UTC, date, datetime
from types import SimpleNamespace

import pytest

from dev.local_stack import run_pipeline
from dev.local_stack.airflow_metadata import CONN_VARIABLE, sql_alchemy_conn

POSTGRES = {CONN_VARIABLE: sql_alchemy_conn("airflow_meta"), "PYTHONPATH": "/somewhere"}
SQLITE = {CONN_VARIABLE: "sqlite:////tmp/private/airflow.db"}


def test_the_command_backfills_both_days_anew_without_the_delay_between_batches():
    argv = run_pipeline.backfill_command(date(2018, 11, 1), date(2018, 11, 30))
    assert argv[:3] == [sys.executable, "-m", "airflow"]
    assert argv[3:5] == ["dags", "backfill"]
    assert argv[argv.index("-s") + 1] == "2018-11-01"
    assert argv[argv.index("-e") + 1] == "2018-11-30"
    assert argv[argv.index("--delay-on-limit") + 1] == "0"
    assert "--reset-dagruns" in argv and "-y" in argv
    assert argv[-1] == "sparkify_etl"


def test_an_hourly_range_is_given_as_moments():
    first, last = datetime(2018, 11, 2, tzinfo=UTC), datetime(2018, 11, 2, 23, tzinfo=UTC)
    argv = run_pipeline.backfill_command(first, last)
    assert argv[argv.index("-s") + 1] == "2018-11-02T00:00:00+00:00"
    assert argv[argv.index("-e") + 1] == "2018-11-02T23:00:00+00:00"


def test_the_default_executor_is_the_debug_executor_on_either_database():
    for given in (POSTGRES, SQLITE, {}):
        env = run_pipeline.backfill_environment(given)
        assert env["AIRFLOW__CORE__EXECUTOR"] == "DebugExecutor"
        assert env["AIRFLOW__DEBUG__FAIL_FAST"] == "False"
        assert env.get(CONN_VARIABLE) == given.get(CONN_VARIABLE)  # the database is kept


def test_one_scheduling_pass_queues_every_ready_task_of_every_run():
    """Airflow's 16 task instances per DAG (and the DebugExecutor's 32 per heartbeat)
    would split a month's ready tasks over several 1 s passes."""
    debug = run_pipeline.backfill_environment(POSTGRES)
    assert debug["AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG"] == str(run_pipeline.PASS_LIMIT)
    assert debug["AIRFLOW__CORE__PARALLELISM"] == str(run_pipeline.PASS_LIMIT)
    assert run_pipeline.PASS_LIMIT >= 31 * 12  # a month of daily runs, 12 tasks each
    local = run_pipeline.backfill_environment(POSTGRES, "LocalExecutor")
    assert local["AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG"] == str(run_pipeline.PASS_LIMIT)
    # The LocalExecutor's parallelism is its worker processes: a few, not a thousand.
    assert local["AIRFLOW__CORE__PARALLELISM"] == str(run_pipeline.LOCAL_PARALLELISM)
    chosen = run_pipeline.backfill_environment({**POSTGRES, "AIRFLOW__CORE__PARALLELISM": "4"})
    assert chosen["AIRFLOW__CORE__PARALLELISM"] == "4"  # a setting given is kept


def test_the_local_executor_forks_a_few_tasks_at_a_time_without_the_mini_scheduler():
    env = run_pipeline.backfill_environment(POSTGRES, "LocalExecutor")
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__CORE__EXECUTE_TASKS_NEW_PYTHON_INTERPRETER"] == "False"
    assert env["AIRFLOW__SCHEDULER__SCHEDULE_AFTER_TASK_EXECUTION"] == "False"


def test_both_executors_get_the_cluster_policy_once():
    for executor in run_pipeline.EXECUTORS:
        env = run_pipeline.backfill_environment(POSTGRES, executor)
        paths = env["PYTHONPATH"].split(os.pathsep)
        assert paths == [str(run_pipeline.BACKFILL_SETTINGS), "/somewhere"]
        again = run_pipeline.backfill_environment(env, executor)
        assert again["PYTHONPATH"] == env["PYTHONPATH"]  # not added twice
    assert POSTGRES["PYTHONPATH"] == "/somewhere"  # not modified in place


def test_the_executor_can_come_from_the_environment():
    env = run_pipeline.backfill_environment(
        {**POSTGRES, "SPARKIFY_BACKFILL_EXECUTOR": "LocalExecutor"}
    )
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"


def test_the_local_executor_is_refused_on_sqlite_and_unknown_executors_always():
    with pytest.raises(ValueError, match="PostgreSQL metadata"):
        run_pipeline.backfill_environment(SQLITE, "LocalExecutor")
    with pytest.raises(ValueError, match="must be one of"):
        run_pipeline.backfill_environment(POSTGRES, "CeleryExecutor")


def _policy():
    path = run_pipeline.BACKFILL_SETTINGS / "airflow_local_settings.py"
    spec = importlib.util.spec_from_file_location("backfill_local_settings", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.task_policy


def _task():
    return SimpleNamespace(retries=3, max_active_tis_per_dag=1, max_active_tis_per_dagrun=2)


def test_the_cluster_policy_takes_the_retries_away(monkeypatch):
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "LocalExecutor")
    task = _task()
    _policy()(task)
    assert task.retries == 0
    # Tasks in parallel processes: a cap such as create_tables' one at a time holds.
    assert (task.max_active_tis_per_dag, task.max_active_tis_per_dagrun) == (1, 2)


def test_under_the_debug_executor_the_policy_drops_the_per_task_caps(monkeypatch):
    """One task at a time anyway; kept, a cap stops the backfill's pass (one capped task
    instance queued per 1 s pass)."""
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "DebugExecutor")
    task = _task()
    _policy()(task)
    assert (task.retries, task.max_active_tis_per_dag, task.max_active_tis_per_dagrun) == (
        0, None, None,
    )  # fmt: skip


def test_the_timing_line_splits_the_wall_into_work_and_airflow():
    line = run_pipeline.timing_line(100.0, [10.0, 20.5, 29.5])
    assert line.startswith("Wall 100 s = 3 task instances' work 60 s")
    assert "Airflow's overhead 40 s" in line
