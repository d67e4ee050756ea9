"""``astro dev pytest`` and ``astro dev parse`` reproduced without Docker.

What the Astro CLI does (astro-cli ``airflow/docker.go`` ``Pytest``/``Parse``,
``airflow/docker_image.go`` ``Pytest``): build the project image (``docker build .``:
the build context, see ``build_context.py``, copied by the Runtime's ``ONBUILD COPY . .``
into ``/usr/local/airflow``, the WORKDIR), ``docker create`` a container of it running
``pytest <file> <args>`` with the image's ENV plus ``--env-file .env`` when the project
has one, ``docker cp`` the project's folders into ``/usr/local/airflow/``, and start it.
``astro dev pytest`` runs ``pytest tests/``; ``astro dev parse`` runs
``pytest .astro/test_dag_integrity_default.py``. The container gets no compose
environment: no metadata DB service (Airflow falls back to an **uninitialised** SQLite
file under AIRFLOW_HOME, since ``.dockerignore`` keeps ``airflow.db`` out and nothing
runs ``airflow db migrate``; the CLI's own generated parse test calls ``initdb()`` for
that reason, ours needs no DB), no scheduler, no side-car services, no Makefile.

The reproduction, step by step:

1. the image: a temporary directory standing in for ``/usr/local/airflow``, holding the
   build context, then ``dags tests plugins include .astro`` copied on top as they are in
   the project (``docker cp`` ignores ``.dockerignore``);
2. the environment: **only** the image's ENV. That is the Runtime's own (``RUNTIME_ENV``),
   then the Dockerfile's ``ENV`` lines evaluated with Docker's substitution rules, then
   ``.env``; every ``/usr/local/airflow`` in a value is mapped to the temporary directory
   (``/home/astro``, the astro user's HOME, to a temporary home). Nothing of the calling
   shell leaks in (no SPARKIFY_REQUIRE_STACK, no AIRFLOW__*), except PATH's stand-in;
3. the interpreter: the project's ``.venv`` stands in for the image's Python (3.11 here,
   the Runtime 13 image has 3.12). The venv also holds the development-only packages of
   requirements-dev.txt (moto, playwright, ruff) that the image does not: they are hidden
   from the run, so a test importing them behaves as in the image;
4. ``pytest tests/`` (or the parse file) with cwd = that directory, through the venv's
   ``pytest`` console script (as the image's ``pytest`` on PATH).

    python -m dev.astro_cli.astro_dev pytest [FILE] [--keep] [-- PYTEST_ARGS...]
    python -m dev.astro_cli.astro_dev parse  [--keep]
    python -m dev.astro_cli.astro_dev env            # print the reproduced image ENV
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from dev.astro_cli.build_context import PROJECT_ROOT, build_context

IMAGE_HOME = "/usr/local/airflow"
# The interpreter standing in for the image's Python: the project's venv.
VENV = PROJECT_ROOT / ".venv"
ASTRO_HOME = "/home/astro"
# What `docker cp` puts on top of the built image before the tests start.
COPIED_FOLDERS = ("dags", "tests", "plugins", "include", ".astro")
PYTEST_FILE = "tests/"
PARSE_FILE = ".astro/test_dag_integrity_default.py"

# The Astro Runtime image's own ENV that matters to an import or a test run. The Runtime's
# Dockerfile is not public; these follow its predecessor, Astronomer Certified
# (astronomer/ap-airflow, e.g. 2.2.5/bullseye/Dockerfile): AIRFLOW_HOME and WORKDIR
# /usr/local/airflow, PYTHONPATH=${PYTHONPATH:+${PYTHONPATH}:}${AIRFLOW_HOME}, the astro
# user (uid 50000, HOME /home/astro), C.UTF-8 locale. Airflow's dags/plugins folders are not
# set: they default to $AIRFLOW_HOME/dags and $AIRFLOW_HOME/plugins. Whether PYTHONPATH
# holds /usr/local/airflow or not changes nothing for this project: the Dockerfile prepends
# include/, and pytest adds the rootdir (pyproject.toml's pythonpath ".") anyway.
RUNTIME_ENV = {
    "AIRFLOW_HOME": IMAGE_HOME,
    "PYTHONPATH": IMAGE_HOME,
    "ASTRONOMER_USER": "astro",
    "ASTRONOMER_UID": "50000",
    "HOME": ASTRO_HOME,
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
}

# Packages a test may import that the image lacks: requirements-dev.txt's own lines.
IMAGE_PACKAGES = {"apache-airflow", "pytest"}  # the Runtime ships these


# --------------------------------------------------------------------------------------
# Dockerfile ENV
# --------------------------------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _logical_lines(text: str) -> Iterator[str]:
    """Instructions of a Dockerfile: continuation lines joined, comment lines dropped."""
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and pending):
            continue
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1]
            continue
        line, pending = pending + raw, ""
        if line.strip():
            yield line.strip()
    if pending.strip():
        yield pending.strip()


def _expand(text: str, env: Mapping[str, str], split: bool) -> list[str]:
    """Docker's word processing: quotes, backslash escapes and ``$VAR`` substitution.

    Supports ``$name``, ``${name}``, ``${name:-word}``, ``${name-word}``, ``${name:+word}``
    and ``${name+word}``. With ``split``, unquoted whitespace separates words.
    """
    words: list[str] = []
    word: list[str] = []
    started = False
    i, n = 0, len(text)

    def substitute(start: int) -> tuple[str, int]:
        if start < n and text[start] == "{":
            end = start + 1
            depth = 1
            while end < n and depth:
                depth += {"{": 1, "}": -1}.get(text[end], 0)
                end += 1
            body = text[start + 1 : end - 1]
            match = _NAME.match(body)
            if not match:
                raise ValueError(f"bad substitution: ${{{body}}}")
            name, rest = match.group(), body[match.end() :]
            value = env.get(name)
            if not rest:
                return value or "", end
            for op in (":-", ":+", "-", "+"):
                if rest.startswith(op):
                    word_text = "".join(_expand(rest[len(op) :], env, split=False))
                    present = value is not None and (value != "" or ":" not in op)
                    if op.endswith("-"):
                        return (value if present else word_text) or "", end
                    return (word_text if present else ""), end
            raise ValueError(f"unsupported substitution: ${{{body}}}")
        match = _NAME.match(text, start)
        if not match:
            return "$", start
        return env.get(match.group(), ""), match.end()

    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n:
            word.append(text[i + 1])
            started, i = True, i + 2
        elif ch == "'":
            end = text.index("'", i + 1)
            word.append(text[i + 1 : end])
            started, i = True, end + 1
        elif ch == '"':
            i += 1
            started = True
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n and text[i + 1] in '"$\\':
                    word.append(text[i + 1])
                    i += 2
                elif text[i] == "$":
                    value, i = substitute(i + 1)
                    word.append(value)
                else:
                    word.append(text[i])
                    i += 1
            i += 1
        elif ch == "$":
            value, i = substitute(i + 1)
            word.append(value)
            started = True
        elif split and ch.isspace():
            if started:
                words.append("".join(word))
            word, started = [], False
            i += 1
        else:
            word.append(ch)
            started, i = True, i + 1
    if started or not split:
        words.append("".join(word))
    return words


def dockerfile_env(text: str, base: Mapping[str, str]) -> dict[str, str]:
    """The environment after the Dockerfile's ``ENV`` (and ``ARG``) lines, over ``base``.

    As Docker evaluates them: every substitution of one ``ENV`` instruction sees the
    environment from before that instruction; ``ARG`` values are visible to later
    substitutions but not exported. Only the last stage counts (a new ``FROM`` of an
    image other than the Runtime would reset everything: this project has one stage).
    """
    env = dict(base)
    args: dict[str, str] = {}
    for line in _logical_lines(text):
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        scope = {**args, **env}
        if instruction == "FROM":
            args = {}
        elif instruction == "ARG":
            name, eq, default = rest.strip().partition("=")
            args[name] = "".join(_expand(default, scope, split=False)) if eq else ""
        elif instruction == "ENV":
            raw = _split_raw(rest.strip())
            if raw and "=" not in raw[0]:  # legacy form: ENV key value with spaces
                key, _, value = rest.strip().partition(" ")
                env[key] = "".join(_expand(value.strip(), scope, split=False))
                continue
            for item in raw:
                key, _, value = item.partition("=")
                env[key] = "".join(_expand(value, scope, split=False))
    return env


def _split_raw(text: str) -> list[str]:
    """Split on unquoted, unescaped whitespace, keeping quotes and escapes in the words."""
    words, word, quote, i = [], "", "", 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and quote != "'":
            word += text[i : i + 2]
            i += 2
            continue
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch.isspace():
            if word:
                words.append(word)
            word = ""
            i += 1
            continue
        word += ch
        i += 1
    if word:
        words.append(word)
    return words


def env_file(path: Path, host: Mapping[str, str]) -> dict[str, str]:
    """``docker --env-file`` semantics: ``KEY=VALUE`` taken literally (no unquoting);
    ``#`` lines and blank lines skipped; a bare ``KEY`` takes the caller's value if set."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.lstrip()
        if not line or line.startswith("#"):
            continue
        key, eq, value = line.partition("=")
        key = key.lstrip()
        if not key or any(c.isspace() for c in key):
            raise ValueError(f"{path}:{number}: variable {key!r} contains whitespace")
        if eq:
            values[key] = value
        elif key in host:
            values[key] = host[key]
    return values


# --------------------------------------------------------------------------------------
# The image stand-in
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Image:
    """A reproduced image: its /usr/local/airflow, its ENV, the interpreter standing in."""

    home: Path  # stands in for /usr/local/airflow
    env: dict[str, str]
    python: Path
    context_files: int = 0  # what `docker build .` sent
    context_bytes: int = 0

    @property
    def pytest(self) -> Path:
        return self.python.parent / "pytest"


def map_paths(value: str, mapping: Mapping[str, Path]) -> str:
    for container_path, local in mapping.items():
        value = re.sub(re.escape(container_path) + r"(?=/|:|$)", str(local), value)
    return value


def image_environment(
    root: Path, home: Path, astro_home: Path, venv: Path, host: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The container's environment, paths mapped to ``home`` and ``astro_home``."""
    host = os.environ if host is None else host
    env = dockerfile_env((root / "Dockerfile").read_text(encoding="utf-8"), RUNTIME_ENV)
    if (root / ".env").is_file():
        env.update(env_file(root / ".env", host))
    mapping = {IMAGE_HOME: home, ASTRO_HOME: astro_home}
    env = {key: map_paths(value, mapping) for key, value in env.items()}
    env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"  # the image's python and pytest
    return env


def _copy_entry(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_symlink():
        os.symlink(os.readlink(source), target)
    else:
        shutil.copy2(source, target)


def build_image(root: Path, dest: Path, venv: Path = VENV) -> Image:
    """Lay out the image under ``dest``: the build context, then the copied folders."""
    home = dest / IMAGE_HOME.lstrip("/")
    astro_home = dest / ASTRO_HOME.lstrip("/")
    home.mkdir(parents=True)
    astro_home.mkdir(parents=True)
    context = build_context(root)
    for name in context.files:
        _copy_entry(root / name, home / name)
    for folder in COPIED_FOLDERS:
        if (root / folder).is_dir():
            shutil.copytree(root / folder, home / folder, symlinks=True, dirs_exist_ok=True)
    env = image_environment(root, home, astro_home, venv)
    python = venv / "bin" / "python"
    return Image(home, env, python, len(context.files), context.size)


@contextmanager
def reproduced_image(root: Path = PROJECT_ROOT, keep: bool = False) -> Iterator[Image]:
    """A reproduced image in a temporary directory, removed afterwards unless ``keep``."""
    dest = Path(tempfile.mkdtemp(prefix="astro-image-"))
    try:
        yield build_image(root, dest)
    finally:
        if keep:
            print(f"kept the reproduced image in {dest}", file=sys.stderr)
        else:
            shutil.rmtree(dest, ignore_errors=True)


def _requirement_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(re.split(r"[\[<>=!~; ]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return names


def _dockerfile_installs(path: Path) -> set[str]:
    """Packages the Dockerfile's own ``RUN pip install`` lines pin (e.g. astro-sdk, --no-deps)."""
    runs = [line for line in path.read_text(encoding="utf-8").splitlines() if "pip install" in line]
    return {
        name.lower().replace("_", "-")
        for line in runs
        for name in re.findall(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==", line)
    }


def dev_only_modules(root: Path = PROJECT_ROOT) -> list[str]:
    """Top-level modules of the packages only requirements-dev.txt asks for (what the image
    installs from requirements.txt or its Dockerfile's own pip lines is not dev-only)."""
    extra = _requirement_names(root / "requirements-dev.txt")
    extra -= _requirement_names(root / "requirements.txt") | IMAGE_PACKAGES
    extra -= _dockerfile_installs(root / "Dockerfile")
    modules = {
        module
        for module, dists in metadata.packages_distributions().items()
        if any(d.lower().replace("_", "-") in extra for d in dists)
    }
    return sorted(m for m in modules if m.isidentifier() and not m.startswith("_"))


_BOOTSTRAP = '''\
"""`pytest` as in the image: the venv's development-only packages are hidden."""
import os
import runpy
import sys

HIDDEN = frozenset({hidden!r})


class _NotInImage:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in HIDDEN:
            raise ModuleNotFoundError(
                f"No module named {{name!r}} (a development package: not in the image)",
                name=name,
            )
        return None


sys.meta_path.insert(0, _NotInImage())
# Then the venv's own `pytest` console script, as if it had been started by name.
sys.argv[0] = {script!r}
sys.path[0] = os.path.dirname(sys.argv[0])
runpy.run_path(sys.argv[0], run_name="__main__")
'''


def pytest_command(image: Image, target: str, args: Sequence[str], scratch: Path) -> list[str]:
    """``pytest <target> <args>`` run by the image's interpreter, dev packages hidden."""
    bootstrap = scratch / "bin" / "pytest"
    bootstrap.parent.mkdir(parents=True, exist_ok=True)
    text = _BOOTSTRAP.format(hidden=dev_only_modules(), script=str(image.pytest))
    bootstrap.write_text(text, encoding="utf-8")
    return [str(image.python), str(bootstrap), target, *args]


def pytest_target(kind: str, pytest_file: str = "") -> str:
    """The file the CLI hands to pytest (``Pytest`` in astro-cli ``airflow/docker.go``)."""
    if kind == "parse":
        return PARSE_FILE
    if "tests" not in pytest_file:
        return "tests/" + pytest_file  # "" -> "tests/"
    return pytest_file


def run(
    kind: str,
    args: Sequence[str] = (),
    pytest_file: str = "",
    keep: bool = False,
    root: Path = PROJECT_ROOT,
) -> int:
    target = pytest_target(kind, pytest_file)
    with reproduced_image(root, keep=keep) as image:
        command = pytest_command(image, target, args, image.home.parents[2] / "reproduction")
        print(f"astro dev {kind}, reproduced: cd {image.home} && pytest {target}", flush=True)
        size = f"{image.context_files} files, {image.context_bytes / 1e6:.2f} MB"
        print(f"  build context: {size} (+ {', '.join(COPIED_FOLDERS)} copied)", flush=True)
        print("  image ENV: " + json.dumps(dict(sorted(image.env.items()))), flush=True)
        return subprocess.run(command, cwd=image.home, env=image.env, check=False).returncode


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("pytest", "parse", "env"))
    parser.add_argument("pytest_file", nargs="?", default="", help="as `astro dev pytest FILE`")
    parser.add_argument("--keep", action="store_true", help="keep the reproduced image")
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    if args.command == "env":
        with reproduced_image() as image:
            for key, value in sorted(image.env.items()):
                print(f"{key}={value}")
        return 0
    if args.command == "parse" and (extra or args.pytest_file):
        parser.error("astro dev parse takes no pytest file or arguments")
    code = run(args.command, extra, args.pytest_file, keep=args.keep)
    print(f"astro dev {args.command} (reproduced): exit code {code}", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
