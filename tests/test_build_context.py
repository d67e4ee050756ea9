"""The Docker build context (= the image's /usr/local/airflow) and Docker's .dockerignore rules.

The context is what ``docker build .`` sends for ``astro dev start|pytest|parse`` and
``astro deploy``; ``dev.astro_cli.build_context`` computes it from ``.dockerignore`` the
way moby's patternmatcher does. On a checkout as ``make test`` leaves it (``.venv/``,
``.local/`` with the stack's state, ``dev/``, ``.git/``) none of those may leak in.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dev.astro_cli.build_context import Matcher, build_context, clean, read_patterns

ROOT = Path(__file__).resolve().parents[1]
MAX_CONTEXT_BYTES = 5_000_000
NEVER_SHIPPED = (".venv/", ".local/", "dev/", ".git/", ".astro/standalone/")
SECRETS_AND_STATE = ("airflow_settings.yaml", ".env", "airflow.db", "airflow.cfg")
IMAGE_NEEDS = (
    "Dockerfile",
    "requirements.txt",
    "packages.txt",
    "pyproject.toml",
    "requirements.lock",
    ".astro/config.yaml",
    ".astro/test_dag_integrity_default.py",
    ".astro/dag_integrity_exceptions.txt",
)
IMAGE_FOLDERS = ("dags", "plugins", "include", "tests")


@pytest.fixture(scope="module")
def context():
    # As under `make test`: the venv and the local state exist (create a probe if needed).
    assert (ROOT / ".venv").is_dir(), "run from a checkout with its .venv (make venv)"
    probe = ROOT / ".local" / "build-context-probe" / "state.json"
    created = not probe.exists()
    probe.parent.mkdir(parents=True, exist_ok=True)
    probe.write_text("{}")
    try:
        yield build_context(ROOT)
    finally:
        if created:
            probe.unlink(missing_ok=True)
            probe.parent.rmdir()


def test_context_holds_nothing_of_the_venv_local_state_dev_or_git(context):
    leaked = [f for f in context.files if f.startswith(NEVER_SHIPPED)]
    assert leaked == []
    assert not [f for f in context.files if "__pycache__/" in f or f.endswith((".pyc", ".pyo"))]
    assert not [f for f in context.files if f.rsplit("/", 1)[-1] in SECRETS_AND_STATE]


def test_context_stays_small(context):
    print(f"build context: {len(context.files)} files, {context.size / 1e6:.2f} MB")
    assert context.size < MAX_CONTEXT_BYTES, f"{context.size / 1e6:.1f} MB"
    assert len(context.files) < 1000


def test_context_holds_what_the_image_needs(context):
    missing = [name for name in IMAGE_NEEDS if (ROOT / name).exists() and name not in context]
    assert missing == []
    assert "Dockerfile" in context and "requirements.txt" in context
    for folder in IMAGE_FOLDERS:
        expected = sorted(
            p.relative_to(ROOT).as_posix()
            for p in (ROOT / folder).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
        )
        assert expected, folder
        assert [f for f in expected if f not in context] == [], folder


def test_development_tooling_stays_out_but_exists(context):
    for name in ("dev/astro_cli/build_context.py", "docker-compose.override.yml", "Makefile"):
        assert (ROOT / name).exists() and name not in context


# --------------------------------------------------------------------------- the rules


def excluded(lines: list[str], path: str) -> bool:
    """As the lines of a .dockerignore file (read, then matched)."""
    return Matcher(read_patterns("\n".join(lines))).excluded(path)


def test_reading_a_dockerignore_file():
    text = "\ufeffone\n/two/\n  three  \n\n# comment\n #not a comment\n! /four\n./five/../six\n"
    assert read_patterns(text) == ["one", "two", "three", "#not a comment", "!four", "six"]


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("logs/", "logs", True),  # a trailing / changes nothing ...
        ("logs/", "logs/x.log", True),  # ... and a directory match covers its content
        ("/logs", "logs/x.log", True),  # a leading / neither
        ("logs", "app/logs/x.log", False),  # anchored at the context root
        ("__pycache__", "include/__pycache__/a.pyc", False),
        ("**/__pycache__", "include/sparkify/__pycache__/a.pyc", True),
        ("**/__pycache__", "__pycache__/a.pyc", True),  # ** matches zero segments too
        ("*.md", "README.md", True),
        ("*.md", "docs/README.md", False),  # * never crosses /
        ("**/*.md", "docs/deep/README.md", True),
        ("a/**/b", "a/b", True),
        ("a/**/b", "a/x/y/b", True),
        ("dev/**", "dev", False),
        ("dev/**", "dev/x/y", True),
        ("?.txt", "a.txt", True),
        ("?.txt", "ab.txt", False),
        ("[ab].txt", "b.txt", True),
        ("[^ab].txt", "b.txt", False),
        ("a.b", "axb", False),  # regex characters are literal
        ("a+(b)", "a+(b)", True),
        ("a\\*b", "a*b", True),
        ("a\\*b", "axb", False),
        (".*", ".venv/bin/python", True),
        (".*", "venv", False),
    ],
)
def test_pattern_semantics(pattern, path, expected):
    assert excluded([pattern], path) is expected


def test_the_last_matching_pattern_wins():
    assert excluded(["*.go", "!keep.go"], "keep.go") is False
    assert excluded(["!keep.go", "*.go"], "keep.go") is True
    assert excluded(["docs", "!docs/README.md"], "docs/README.md") is False
    assert excluded(["docs", "!docs/README.md"], "docs/other.md") is True
    assert excluded(["**", "!dags", "dags/scratch.py"], "dags/scratch.py") is True
    assert excluded(["**", "!dags", "dags/scratch.py"], "dags/etl.py") is False


def test_bad_patterns_are_refused():
    for bad in (["!"], ["a["], ["[ab"]):
        with pytest.raises(ValueError):
            Matcher(bad)


def test_clean_is_gos_filepath_clean():
    assert [clean(p) for p in ("a//b", "./a/", "a/../b", "../a", "/../a", "", "/")] == [
        "a/b",
        "a",
        "b",
        "../a",
        "/a",
        ".",
        "/",
    ]


def test_walk_of_a_tree_follows_the_rules(tmp_path):
    files = [
        "Dockerfile",
        "dags/etl.py",
        "dags/__pycache__/etl.cpython-311.pyc",
        "dev/tool.py",
        "dev/keep/me.txt",
        ".venv/lib/site.py",
        ".git/HEAD",
        "logs/scheduler.log",
        "include/logs/kept.txt",
        "notes.md",
        "docs/notes.md",
    ]
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    (tmp_path / "link").symlink_to(tmp_path / "dev")
    (tmp_path / ".dockerignore").write_text(
        "# state\n.git\n.venv\nlogs/\n/dev/\n!dev/keep\n**/__pycache__\n*.md\n.dockerignore\n"
    )
    context = build_context(tmp_path)
    assert context.files == (
        "Dockerfile",
        "dags/etl.py",
        "dev/keep/me.txt",  # re-included below an excluded directory
        "docs/notes.md",  # *.md is anchored at the root
        "include/logs/kept.txt",  # logs/ is the root's only
        "link",  # a link is sent as a link, not followed
    )
    assert context.size == sum((tmp_path / f).lstat().st_size for f in context.files) > 0


def test_no_dockerignore_sends_everything(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "c.txt").write_text("c")
    assert build_context(tmp_path).files == ("a/b/c.txt",)
