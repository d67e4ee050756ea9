"""How `make run` drives the backfill: its command and environment (no Airflow started)."""

from __future__ import annotations

import importlib.util
import os
import sys
from datetime import date
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


def test_the_default_executor_is_the_debug_executor_on_either_database():
    for given in (POSTGRES, SQLITE, {}):
        env = run_pipeline.backfill_environment(given)
        assert env["AIRFLOW__CORE__EXECUTOR"] == "DebugExecutor"
        assert env["AIRFLOW__DEBUG__FAIL_FAST"] == "False"
        assert env.get(CONN_VARIABLE) == given.get(CONN_VARIABLE)  # the database is kept
        assert "AIRFLOW__CORE__PARALLELISM" not in env


def test_the_local_executor_forks_a_few_tasks_at_a_time_without_retries():
    env = run_pipeline.backfill_environment(POSTGRES, "LocalExecutor")
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__CORE__PARALLELISM"] == str(run_pipeline.LOCAL_PARALLELISM)
    assert env["AIRFLOW__CORE__EXECUTE_TASKS_NEW_PYTHON_INTERPRETER"] == "False"
    paths = env["PYTHONPATH"].split(os.pathsep)
    assert paths == [str(run_pipeline.BACKFILL_SETTINGS), "/somewhere"]
    again = run_pipeline.backfill_environment(env, "LocalExecutor")
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


def test_the_cluster_policy_takes_the_retries_away():
    path = run_pipeline.BACKFILL_SETTINGS / "airflow_local_settings.py"
    spec = importlib.util.spec_from_file_location("backfill_local_settings", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    task = SimpleNamespace(retries=3)
    module.task_policy(task)
    assert task.retries == 0
