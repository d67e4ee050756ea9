"""The Astro image, requirements.txt and the lock describe one and the same stack.

The image is the Astro Runtime (its tag decides Airflow) + `pip install -r requirements.txt`
(the runtime's ONBUILD step) + astro-sdk-python installed with --no-deps (Dockerfile). The
native path is requirements.lock, compiled by `make lock` with requirements-overrides.txt.
astro-sdk-python 1.9.0's Flask-Session<0.6 cap is dropped in both, on purpose; these tests
keep the two paths in step and make sure nothing else is dropped along with it.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
# Astro Runtime tag -> the Airflow it ships, from Astronomer's runtime catalog (the
# updates.astronomer.io/astronomer-runtime entries quoted in astronomer/astro-cli's
# pkg/runtimeversions/testdata/catalog.json; 13.0.0 as this table had it before).
# Extend this table, and the lock, together when moving the image.
RUNTIME_AIRFLOW = {"13.0.0": "2.11.0", "13.10.0": "2.11.2", "13.11.0": "2.11.2"}
ASTRO_SDK = "astro-sdk-python"
# The extras of astro-sdk-python the project uses: the lock installs them
# (requirements-dev.txt), requirements.txt carries their packages for the image.
ASTRO_SDK_EXTRAS = {"amazon", "postgres"}
# Files .dockerignore keeps out of the image, where `astro dev pytest` runs these tests
# too; the Makefile's absence tells the image from a checkout.
NOT_IN_IMAGE = {"Makefile", "requirements-dev.txt", "airflow_settings.yaml"}


def in_image() -> bool:
    return not (ROOT / "Makefile").exists()


def read(name: str) -> str:
    if name in NOT_IN_IMAGE and in_image():
        pytest.skip(f"{name} is not in the image (.dockerignore): checked in a checkout")
    return (ROOT / name).read_text()


def lock_versions() -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9_.\-\[\]]+)==(\S+)", read("requirements.lock"), re.M)
    return {canonicalize_name(re.sub(r"\[.*\]", "", name)): version for name, version in pins}


def requirement_lines(name: str) -> list[Requirement]:
    """The requirements of a requirements file, without comments and `-r`/`-c` lines."""
    lines = (line.split("#", 1)[0].strip() for line in read(name).splitlines())
    return [Requirement(line) for line in lines if line and not line.startswith("-")]


def requirement_names(name: str) -> set[str]:
    return {canonicalize_name(req.name) for req in requirement_lines(name)}


def dockerfile_astro_sdk() -> str:
    """The astro-sdk-python version the Dockerfile installs, which it must do with --no-deps."""
    match = re.search(
        r"^RUN pip install\b(?=.*--no-deps).*\bastro-sdk-python==(\S+)\s*$",
        read("Dockerfile"),
        re.M,
    )
    assert match, "the Dockerfile must `RUN pip install --no-deps astro-sdk-python==<version>`"
    return match[1]


def installed_requires(distribution: str, extras: set[str]) -> list[Requirement]:
    """The requirements `distribution[extras]` declares, markers evaluated for this Python."""
    result = []
    for line in metadata.requires(distribution) or ():
        req = Requirement(line)
        if req.marker is None or any(
            req.marker.evaluate({"extra": extra}) for extra in extras | {""}
        ):
            result.append(req)
    return result


def test_dockerfile_runtime_ships_the_locked_airflow():
    match = re.search(r"^FROM quay\.io/astronomer/astro-runtime:(\S+)$", read("Dockerfile"), re.M)
    assert match, "Dockerfile must start FROM quay.io/astronomer/astro-runtime:<tag>"
    tag = match[1]
    assert tag in RUNTIME_AIRFLOW, f"runtime {tag}: which Airflow does it ship? add it here"
    assert RUNTIME_AIRFLOW[tag] == lock_versions()["apache-airflow"], (
        f"runtime {tag} ships Airflow {RUNTIME_AIRFLOW[tag]}, "
        f"the lock has {lock_versions()['apache-airflow']}"
    )


def test_requirements_dev_pins_the_locked_airflow_and_astro_sdk():
    locked = lock_versions()
    pins = {canonicalize_name(r.name): r for r in requirement_lines("requirements-dev.txt")}
    assert str(pins["apache-airflow"].specifier) == f"=={locked['apache-airflow']}"
    assert str(pins[ASTRO_SDK].specifier) == f"=={locked[ASTRO_SDK]}", "astro-sdk-python"
    assert set(pins[ASTRO_SDK].extras) == ASTRO_SDK_EXTRAS, "astro-sdk-python's extras"


def test_requirements_txt_pins_agree_with_the_lock():
    locked = lock_versions()
    for req in requirement_lines("requirements.txt"):
        name = canonicalize_name(req.name)
        assert name in locked, f"{name} is in requirements.txt but not in the lock"
        assert req.specifier.contains(locked[name]), (
            f"{name}: requirements.txt {req.specifier}, lock {locked[name]}"
        )
        if not str(req.specifier).startswith(">="):
            assert str(req.specifier) == f"=={locked[name]}", (
                f"{name}: pin it to the lock's {locked[name]} (or give a floor, >=)"
            )


def test_requirements_txt_leaves_airflow_and_astro_sdk_out():
    # The runtime's ONBUILD step refuses an apache-airflow pin; astro-sdk-python's stale
    # Flask-Session<0.6 would make pip fail, or swap the image's Airflow for one without
    # flask-session (Airflow 3): the Dockerfile installs it with --no-deps instead.
    names = requirement_names("requirements.txt")
    assert "apache-airflow" not in names
    assert ASTRO_SDK not in names


def test_the_image_installs_the_locked_astro_sdk_without_its_pins():
    locked = lock_versions()[ASTRO_SDK]
    assert dockerfile_astro_sdk() == locked, "Dockerfile and lock disagree on astro-sdk-python"


def test_requirements_txt_carries_what_astro_sdk_needs():
    """With --no-deps, astro-sdk's own dependencies must come from requirements.txt or Airflow."""
    assert metadata.version(ASTRO_SDK) == lock_versions()[ASTRO_SDK]
    listed = {canonicalize_name(r.name): r for r in requirement_lines("requirements.txt")}
    from_airflow = {canonicalize_name(r.name) for r in installed_requires("apache-airflow", set())}
    overridden = requirement_names("requirements-overrides.txt")
    locked = lock_versions()
    for req in installed_requires(ASTRO_SDK, ASTRO_SDK_EXTRAS):
        name = canonicalize_name(req.name)
        if name == "apache-airflow" or name in overridden:
            continue
        if name in from_airflow and name not in listed:
            continue
        assert name in listed, f"{ASTRO_SDK} needs {req}: add it to requirements.txt"
        assert set(req.extras) <= set(listed[name].extras), (
            f"{ASTRO_SDK} needs {req}: requirements.txt lists {listed[name]}"
        )
        assert req.specifier.contains(locked[name]), f"{ASTRO_SDK} needs {req}, lock {locked[name]}"


def test_overrides_agree_with_the_lock_and_drop_only_astro_sdks_cap():
    locked = lock_versions()
    overrides = requirement_lines("requirements-overrides.txt")
    assert overrides, "requirements-overrides.txt has no override left: drop it and its use"
    header = "\n".join(read("requirements.lock").splitlines()[:3])
    assert "--override requirements-overrides.txt" in header, "lock not compiled with overrides"
    for override in overrides:
        name = canonicalize_name(override.name)
        assert override.specifier.contains(locked[name]), (
            f"override {override}, lock {locked[name]}"
        )
        declared: dict[str, Requirement] = {}
        for dist in ("apache-airflow", *locked):
            try:
                if metadata.version(dist) != locked[canonicalize_name(dist)]:
                    continue  # an install that is not the lock's (e.g. in another image)
                extras = ASTRO_SDK_EXTRAS if dist == ASTRO_SDK else set()
                requires = installed_requires(dist, extras)
            except metadata.PackageNotFoundError:
                continue
            for req in requires:
                if canonicalize_name(req.name) == name:
                    declared[canonicalize_name(dist)] = req
        assert ASTRO_SDK in declared, f"{ASTRO_SDK} no longer declares {name}: drop the override"
        assert not declared.pop(ASTRO_SDK).specifier.contains(locked[name]), (
            f"{ASTRO_SDK} now accepts {name} {locked[name]}: drop the override"
        )
        assert declared, f"nothing installed as locked declares {name}: venv synced to the lock?"
        for dist, req in declared.items():
            # The override keeps every clause the others declare: it drops astro-sdk's cap only.
            missing = {str(s) for s in req.specifier} - {str(s) for s in override.specifier}
            assert not missing, f"override {override} drops {dist}'s {req} ({sorted(missing)})"


def test_make_lock_compiles_with_the_overrides():
    makefile = read("Makefile")
    recipe = re.search(r"^lock:.*\n((?:\t.*\n|.*\\\n)+)", makefile, re.M)
    assert recipe, "the Makefile has no `lock` target"
    assert "uv pip compile" in recipe[1]
    assert "--override requirements-overrides.txt" in recipe[1]


def test_astro_project_layout():
    for path in ("dags", "include", "plugins", "tests", "Dockerfile", "requirements.txt",
                 "packages.txt", "airflow_settings.yaml", ".astro/config.yaml",
                 ".astro/test_dag_integrity_default.py", "README.md"):  # fmt: skip
        if not (in_image() and path in NOT_IN_IMAGE):
            assert (ROOT / path).exists(), path


@pytest.mark.parametrize("file_type", ["parquet", "ndjson", "csv"])
def test_astro_sdks_file_types_work_with_the_locked_packages(tmp_path, file_type):
    """A pin that installs but cannot import (pyarrow 26 wants NumPy 2, which pandas 2.1
    cannot take) only shows when astro-sdk reads or writes such a file: do it here."""
    import pandas as pd
    from astro.constants import FileType
    from astro.files import File

    frame = pd.DataFrame({"user_id": [1, 2], "level": ["free", "paid"]})
    file = File(str(tmp_path / f"users.{file_type}"), filetype=FileType(file_type))
    file.create_from_dataframe(frame)
    assert file.export_to_dataframe().to_dict("list") == frame.to_dict("list")
