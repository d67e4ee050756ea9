"""Airflow's cluster policy for ``make run``'s backfill: no retries, and no per-task caps
under the DebugExecutor.

Airflow imports ``airflow_local_settings`` from ``sys.path``; ``backfill_environment``
(``run_pipeline.py``) puts this folder on the backfill's ``PYTHONPATH`` (and so on its
task processes'), nowhere else: ``make airflow``'s scheduler keeps the DAG as written.

* **No retries.** The DAG retries a failed task 3 times, 5 minutes apart, which is right
  for the scheduler but leaves a developer's backfill waiting 15 minutes for a run that
  failed; Airflow 2's ``--disable-retry`` misses task instances that finished in a
  LocalExecutor worker. With this policy a failed task is failed at once (its
  ``on_failure_callback`` fires, as after the last retry), its run fails and the backfill
  exits non-zero.
* **DebugExecutor: no ``max_active_tis_per_dag``/``max_active_tis_per_dagrun``.** That
  executor runs one task at a time, in the backfill's own process, so such a cap holds
  anyway. Kept, it costs a scheduling pass per capped task instance: Airflow 2.11's
  backfill loop (``_process_backfill_task_instances``) stops the whole pass at the first
  task instance over its cap, so with 30 runs a capped ``create_tables`` is queued one
  run per pass (30 passes of ~1 s, the downstream tasks of every run waiting behind it).
"""

from __future__ import annotations

import os
from typing import Any


def _one_task_at_a_time() -> bool:
    return os.environ.get("AIRFLOW__CORE__EXECUTOR", "").rsplit(".", 1)[-1] == "DebugExecutor"


def task_policy(task: Any) -> None:
    task.retries = 0
    if _one_task_at_a_time():
        task.max_active_tis_per_dag = None
        task.max_active_tis_per_dagrun = None
