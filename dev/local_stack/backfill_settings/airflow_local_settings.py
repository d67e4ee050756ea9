"""Airflow's cluster policy for ``make run``'s backfill on LocalExecutor: no retries.

Airflow imports ``airflow_local_settings`` from ``sys.path``; ``backfill_environment``
(``run_pipeline.py``) puts this folder on ``PYTHONPATH`` of a LocalExecutor backfill
only. The DAG retries a failed task 3 times, 5 minutes apart, which is right for the
scheduler but leaves a developer's backfill waiting 15 minutes for a run that failed.
The DebugExecutor skips retries by itself; the LocalExecutor does not, and Airflow 2's
``--disable-retry`` misses task instances that finished in a worker process. With this
policy a failed task is failed at once (its ``on_failure_callback`` fires, as after the
last retry), its run fails and the backfill exits non-zero, as before.
"""

from __future__ import annotations

from typing import Any


def task_policy(task: Any) -> None:
    task.retries = 0
