"""Every DAG file imports: the check `astro dev parse` (and `astro deploy`) runs.

The contract of the file the Astro CLI generates (astro-cli
``airflow/include/airflow2/dagintegritytestdefault.py``), written for this project:
``DagBag(include_examples=False)`` of Airflow's configured dags folder, imported while
connection, variable and environment lookups answer without a backend
(``BaseHook.get_connection`` an empty ``Connection``, ``Variable.get`` its default or a
mocked value, ``os.getenv`` the real value, else the default, else a mocked value), one
test per file, and a file listed in ``.astro/dag_integrity_exceptions.txt`` (paths
relative to the project root, e.g. ``dags/x.py``) may fail to import. Unlike the
generated file it patches only while the DAGs import (the rest of a pytest session sees
the real ``os.getenv``) and needs no metadata DB. Project-specific checks live in
``tests/dags/``.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pytest
from airflow.hooks.base import BaseHook
from airflow.models import Connection, DagBag, Variable

PROJECT = Path(__file__).resolve().parents[1]
EXCEPTIONS = PROJECT / ".astro" / "dag_integrity_exceptions.txt"
_UNSET = object()


def _connection(conn_id, *args, **kwargs):
    return Connection(conn_id=conn_id)


def _variable(key, default_var=_UNSET, deserialize_json=False, *args, **kwargs):
    if default_var is not _UNSET:
        return default_var
    return {} if deserialize_json else f"MOCKED_{key.upper()}_VARIABLE"


def _getenv(key, default=None):
    return os.environ.get(key) or (default if default is not None else f"MOCKED_{key.upper()}")


@contextmanager
def _no_backends():
    patches = [
        (BaseHook, "get_connection", staticmethod(_connection)),
        (Variable, "get", staticmethod(_variable)),
        (os, "getenv", _getenv),
    ]
    saved = [(owner, name, vars(owner)[name]) for owner, name, _ in patches]
    for owner, name, value in patches:
        setattr(owner, name, value)
    try:
        yield
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)


def _exceptions() -> set[str]:
    if not EXCEPTIONS.is_file():
        return set()
    lines = (line.strip() for line in EXCEPTIONS.read_text(encoding="utf-8").splitlines())
    return {line for line in lines if line and not line.startswith("#")}


def _results() -> list[tuple[str, str | None]]:
    with _no_backends():
        dag_bag = DagBag(include_examples=False)
    errors = {
        os.path.relpath(path, PROJECT): e.strip() for path, e in dag_bag.import_errors.items()
    }
    loaded = {os.path.relpath(dag.fileloc, PROJECT) for dag in dag_bag.dags.values()}
    results = sorted(errors.items()) + [(path, None) for path in sorted(loaded - errors.keys())]
    return results or [(os.path.relpath(dag_bag.dag_folder, PROJECT), "no DAG file found")]


@pytest.mark.parametrize(("rel_path", "error"), _results(), ids=lambda value: str(value)[:60])
def test_file_imports(rel_path, error):
    if error and rel_path not in _exceptions():
        raise AssertionError(f"{rel_path} failed to import:\n{error}")
