"""Every launcher imports the DAGs: the image, the Astro CLI's standalone mode, the native path.

Each launcher gives Airflow a different sys.path and environment; the DAGs must import
under all of them with ``sparkify`` from include/ and ``operators`` from plugins/, and
without ``dev/`` (development tooling, never on a launcher's path). Each case builds a
``DagBag`` in a fresh interpreter started with ``-P`` (no cwd on sys.path, as for the
``airflow`` console script that runs the scheduler and the DAG processor):

* image: the reproduced image of ``dev.astro_cli.astro_dev`` (build context + copied
  folders in a temporary /usr/local/airflow, only the image's ENV);
* standalone: what ``astro dev start --standalone`` sets (astro-cli
  ``airflow/standalone.go``: DAGS_FOLDER=<project>/dags, PLUGINS_FOLDER=<project>/plugins,
  PYTHONPATH=<project>/include only, LocalExecutor), the process in the project root;
  AIRFLOW_HOME is a temporary .astro/standalone instead of the project's own;
* native: ``scripts/airflow_env.sh``, as ``make run`` / ``make airflow`` source it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from dev.astro_cli.astro_dev import reproduced_image

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv"
EXPECTED_DAGS = ["sparkify_daily_report", "sparkify_etl"]
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MARK = "LAUNCHER-RESULT "

PROBE = f"""
import importlib.util, json
from airflow.models import DagBag
bag = DagBag(include_examples=False)
import operators, sparkify
print({MARK!r} + json.dumps({{
    "dag_ids": sorted(bag.dag_ids),
    "errors": {{path: error.strip() for path, error in bag.import_errors.items()}},
    "dag_folder": bag.dag_folder,
    "sparkify": sparkify.__file__,
    "operators": operators.__file__,
    "dev_importable": importlib.util.find_spec("dev") is not None,
}}))
"""


def probe(command: list[str], cwd: Path, env: dict[str, str]) -> dict:
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith(MARK)]
    assert result.returncode == 0 and lines, result.stderr[-3000:] + result.stdout[-2000:]
    return json.loads(lines[-1].removeprefix(MARK))


def launch_image(tmp_path: Path) -> tuple[dict, Path]:
    with reproduced_image(ROOT) as image:
        return probe([str(image.python), "-P", "-c", PROBE], image.home, image.env), image.home


def launch_standalone(tmp_path: Path) -> tuple[dict, Path]:
    env = {
        "PATH": f"{VENV / 'bin'}:{SYSTEM_PATH}",
        "HOME": str(tmp_path),
        "AIRFLOW_HOME": str(tmp_path / ".astro" / "standalone"),
        "ASTRONOMER_ENVIRONMENT": "local",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "_AIRFLOW__SKIP_DATABASE_EXECUTOR_COMPATIBILITY_CHECK": "1",
        "PYTHONPATH": str(ROOT / "include"),
    }
    return probe([str(VENV / "bin" / "python"), "-P", "-c", PROBE], ROOT, env), ROOT


def launch_native(tmp_path: Path) -> tuple[dict, Path]:
    env = {"PATH": SYSTEM_PATH, "HOME": str(tmp_path)}
    script = 'source scripts/airflow_env.sh && exec python -P -c "$0"'
    return probe(["bash", "-c", script, PROBE], ROOT, env), ROOT


@pytest.mark.parametrize("launch", [launch_image, launch_standalone, launch_native])
def test_dags_import_under_every_launcher(launch, tmp_path):
    result, home = launch(tmp_path)
    assert result["errors"] == {}
    assert result["dag_ids"] == EXPECTED_DAGS
    assert Path(result["dag_folder"]) == home / "dags"
    assert Path(result["sparkify"]) == home / "include" / "sparkify" / "__init__.py"
    assert Path(result["operators"]) == home / "plugins" / "operators" / "__init__.py"
    assert result["dev_importable"] is False, "dev/ must not be on a launcher's path"


def test_the_image_reproduction_has_no_dev_and_no_local_state():
    with reproduced_image(ROOT) as image:
        assert not (image.home / "dev").exists()
        assert not (image.home / ".venv").exists() and not (image.home / ".local").exists()
        assert (image.home / "dags").is_dir() and (image.home / ".astro").is_dir()
        assert image.env["AIRFLOW_HOME"] == str(image.home)
        assert image.env["PYTHONPATH"].split(os.pathsep)[0] == str(image.home / "include")
        assert "SPARKIFY_REQUIRE_STACK" not in image.env
        assert not [key for key in image.env if key.startswith("SPARKIFY_")]
