"""The Astro image, requirements.txt and the lock describe one and the same stack."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Astro Runtime tag -> the Airflow it ships (Astronomer's release notes). Extend this
# table, and the lock, together when moving the image.
RUNTIME_AIRFLOW = {"13.0.0": "2.11.0"}


def lock_versions() -> dict[str, str]:
    pins = re.findall(
        r"^([A-Za-z0-9_.\-\[\]]+)==(\S+)", (ROOT / "requirements.lock").read_text(), re.M
    )
    return {
        re.sub(r"\[.*\]", "", name).lower().replace("_", "-"): version for name, version in pins
    }


def test_dockerfile_runtime_ships_the_locked_airflow():
    match = re.search(
        r"^FROM quay\.io/astronomer/astro-runtime:(\S+)$", (ROOT / "Dockerfile").read_text(), re.M
    )
    assert match, "Dockerfile must start FROM quay.io/astronomer/astro-runtime:<tag>"
    tag = match[1]
    assert tag in RUNTIME_AIRFLOW, f"runtime {tag}: which Airflow does it ship? add it here"
    assert RUNTIME_AIRFLOW[tag] == lock_versions()["apache-airflow"]


def test_requirements_txt_pins_agree_with_the_lock():
    locked = lock_versions()
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, operator, version = re.match(
            r"([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*(==|>=)\s*(\S+)", line
        ).groups()
        name = name.lower().replace("_", "-")
        assert name in locked, f"{name} is in requirements.txt but not in the lock"
        if operator == "==":
            assert locked[name] == version, (
                f"{name}: requirements.txt {version}, lock {locked[name]}"
            )
        else:
            assert tuple(map(int, locked[name].split(".")[:2])) >= tuple(
                map(int, version.split(".")[:2])
            )


def test_astro_project_layout():
    for path in ("dags", "include", "plugins", "tests", "Dockerfile", "requirements.txt",
                 "packages.txt", "airflow_settings.yaml", ".astro/config.yaml",
                 ".astro/test_dag_integrity_default.py", "README.md"):  # fmt: skip
        assert (ROOT / path).exists(), path
