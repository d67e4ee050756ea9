"""The reproduction of `astro dev pytest` / `astro dev parse` (dev.astro_cli.astro_dev).

Docker's ENV evaluation, ``--env-file`` reading, the CLI's choice of pytest file, and a
whole run on a small project: the container's environment only, dev/ and the
development packages absent (their modules skipped with a reason), the exit code passed on.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dev.astro_cli import astro_dev
from dev.astro_cli.astro_dev import dockerfile_env, env_file, map_paths, pytest_target

ROOT = Path(__file__).resolve().parents[1]


def test_env_lines_follow_dockers_substitution_rules():
    dockerfile = """
FROM quay.io/astronomer/astro-runtime:13.0.0
ARG TAG=v1
# a comment between instructions
ENV A=1 \\
    B="two words" \\
    C=$A-${TAG} \\
    PYTHONPATH="/usr/local/airflow/include${PYTHONPATH:+:$PYTHONPATH}"
ENV D=${A} E=${UNSET:-fallback} F=${A:+set} G=${UNSET:+set} H='$A literal'
ENV LEGACY value with spaces
ENV A=3 I=$A
"""
    env = dockerfile_env(dockerfile, {"PYTHONPATH": "/usr/local/airflow", "A": "0"})
    assert env["B"] == "two words"
    assert env["C"] == "0-v1"  # one ENV sees the environment from before it
    assert env["PYTHONPATH"] == "/usr/local/airflow/include:/usr/local/airflow"
    assert (env["D"], env["E"], env["F"], env["G"]) == ("1", "fallback", "set", "")
    assert env["H"] == "$A literal"
    assert env["LEGACY"] == "value with spaces"
    assert (env["A"], env["I"]) == ("3", "1")
    assert "TAG" not in env  # ARG is not exported
    empty = dockerfile_env("ENV PYTHONPATH=/x${PYTHONPATH:+:$PYTHONPATH}", {})
    assert empty["PYTHONPATH"] == "/x"


def test_this_projects_dockerfile_in_the_runtime():
    env = dockerfile_env((ROOT / "Dockerfile").read_text(), astro_dev.RUNTIME_ENV)
    assert env["PYTHONPATH"].split(":")[0] == "/usr/local/airflow/include"
    assert env["AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES"] == "airflow.* astro.*"
    assert env["AIRFLOW_HOME"] == "/usr/local/airflow"


def test_env_file_is_read_as_docker_reads_it(tmp_path):
    path = tmp_path / ".env"
    path.write_text('# comment\n\nA=1\n  B="quoted stays"\nC=x=y\nFROM_HOST\nNOT_SET\n')
    assert env_file(path, {"FROM_HOST": "h"}) == {
        "A": "1",
        "B": '"quoted stays"',
        "C": "x=y",
        "FROM_HOST": "h",
    }
    path.write_text("BAD KEY=1\n")
    with pytest.raises(ValueError, match="whitespace"):
        env_file(path, {})


def test_container_paths_are_mapped_only_as_whole_components(tmp_path):
    mapping = {"/usr/local/airflow": tmp_path}
    assert map_paths("/usr/local/airflow/include:/usr/local/airflow", mapping) == (
        f"{tmp_path}/include:{tmp_path}"
    )
    assert map_paths("/usr/local/airflowish:/usr/local/bin", mapping) == (
        "/usr/local/airflowish:/usr/local/bin"
    )


def test_the_clis_pytest_file_rule():
    assert pytest_target("pytest") == "tests/"
    assert pytest_target("pytest", "test_x.py") == "tests/test_x.py"
    assert pytest_target("pytest", "tests/dags") == "tests/dags"
    assert pytest_target("parse") == ".astro/test_dag_integrity_default.py"


def test_development_packages_are_the_ones_the_image_lacks():
    hidden = astro_dev.dev_only_modules()
    assert {"moto", "playwright"} <= set(hidden)
    assert not {"airflow", "astro", "boto3", "pytest", "psycopg2"} & set(hidden)
    conftest = (ROOT / "tests" / "conftest.py").read_text()
    for module in ("moto", "playwright"):  # the conftest skips what the image lacks
        assert f'"{module}":' in conftest


@pytest.fixture
def small_project(tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / "tests").mkdir(parents=True)
    (project / "dev").mkdir()
    (project / "dev" / "__init__.py").write_text("")
    (project / "Dockerfile").write_text(
        'FROM quay.io/astronomer/astro-runtime:13.0.0\nENV PYTHONPATH="/usr/local/airflow/include'
        '${PYTHONPATH:+:$PYTHONPATH}" FROM_IMAGE=yes\n'
    )
    (project / ".dockerignore").write_text("dev/\n.env\n")
    (project / ".env").write_text("FROM_DOTENV=/usr/local/airflow/x\n")
    (project / "pyproject.toml").write_text('[tool.pytest.ini_options]\naddopts = "-ra"\n')
    shutil.copy(ROOT / "tests" / "conftest.py", project / "tests" / "conftest.py")
    (project / "tests" / "test_env.py").write_text(
        "import os\n"
        "def test_only_the_image_env():\n"
        "    home = os.environ['AIRFLOW_HOME']\n"
        "    assert os.getcwd() == home\n"
        "    assert os.environ['PYTHONPATH'].split(':')[0] == home + '/include'\n"
        "    assert os.environ['FROM_IMAGE'] == 'yes'\n"
        "    assert os.environ['FROM_DOTENV'] == home + '/x'\n"
        "    assert not os.path.exists('dev') and not os.path.exists('.env')\n"
        "    assert 'SPARKIFY_REQUIRE_STACK' not in os.environ\n"
        "    assert 'LEAKED_FROM_CALLER' not in os.environ\n"
    )
    (project / "tests" / "test_needs_dev.py").write_text("import dev.local_stack\n")
    (project / "tests" / "test_needs_moto.py").write_text("import moto\n")
    monkeypatch.setenv("SPARKIFY_REQUIRE_STACK", "1")
    monkeypatch.setenv("LEAKED_FROM_CALLER", "1")
    return project


def test_a_run_sees_the_image_only(small_project, capfd):
    assert astro_dev.run("pytest", root=small_project) == 0
    out = capfd.readouterr().out
    assert "1 passed, 2 skipped" in out
    assert "dev/ is not in the image" in out
    assert "moto (requirements-dev.txt) is not in the image" in out


def test_a_failing_run_fails(small_project):
    (small_project / "tests" / "test_fails.py").write_text("def test_no():\n    assert False\n")
    assert astro_dev.run("pytest", root=small_project) == 1
