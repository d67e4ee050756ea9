"""The Docker build context of the project: which files ``docker build .`` sends.

``astro dev start``, ``astro dev pytest``, ``astro dev parse`` and ``astro deploy`` all
build the image with ``docker build -t <image> -f Dockerfile .`` in the project root, and
the Astro Runtime's ``ONBUILD COPY . .`` copies the whole context into
``/usr/local/airflow``. So the image holds exactly the files this module lists.

``.dockerignore`` is read with Docker's rules (moby's ``ignorefile.ReadAll`` and
``patternmatcher``, which BuildKit and the classic builder share), not ``.gitignore``'s:

* a line starting with ``#`` is a comment; surrounding whitespace is trimmed; a UTF-8 BOM
  on the first line is dropped; blank lines are skipped;
* ``!`` turns a pattern into an exception (re-includes what earlier patterns excluded);
* every pattern is relative to the context root and cleaned like Go's ``filepath.Clean``,
  so a leading ``/``, a trailing ``/`` and ``./`` make no difference: ``logs/`` and
  ``/logs`` both mean the root's ``logs`` only. Patterns are **anchored at the root**:
  ``__pycache__`` excludes only ``./__pycache__``, ``**/__pycache__`` excludes every one;
* ``*`` and ``?`` never match ``/``; ``**`` matches any number of path segments (zero
  included); ``[...]`` is a character class; ``\\`` escapes the next character;
* a pattern that matches a directory excludes everything below it (parent matching);
* the **last** pattern that matches a path decides.

Stdlib only (the image's Python and the dev tooling share it; no pathspec, whose
gitwildmatch rules are not Docker's).

    python -m dev.astro_cli.build_context [--list] [ROOT]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DOCKERIGNORE = ".dockerignore"

# Characters that are regex syntax but plain in a Go filepath pattern (moby escapes these).
_REGEX_ONLY = set(".+()|{}$")


def read_patterns(text: str) -> list[str]:
    """The patterns of a ``.dockerignore`` text, as moby's ``ignorefile.ReadAll`` gives them."""
    patterns = []
    for number, raw in enumerate(text.splitlines()):
        line = raw.removeprefix("\ufeff") if number == 0 else raw
        if line.startswith("#"):  # a comment only when '#' is the first character
            continue
        line = line.strip()
        if not line:
            continue
        invert = line.startswith("!")
        if invert:
            line = line[1:].strip()
        if line:
            line = clean(line)
            if len(line) > 1 and line.startswith("/"):
                line = line[1:]
        patterns.append(("!" if invert else "") + line)
    return patterns


def clean(path: str) -> str:
    """Go's ``filepath.Clean`` for slash-separated paths."""
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(part)
    result = "/".join(parts)
    if rooted:
        return "/" + result
    return result or "."


@dataclass
class Pattern:
    """One cleaned pattern; ``matches`` follows moby's ``Pattern.match`` (its shortcuts too)."""

    text: str
    exclusion: bool = False
    dirs: list[str] = field(init=False)
    _kind: str = field(init=False, default="exact")
    _regex: re.Pattern[str] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.dirs = self.text.split("/")
        self._compile()

    def _compile(self) -> None:
        text, regex, kind, i, n = self.text, "^", "exact", 0, len(self.text)
        while i < n:
            first = i == 0
            ch = text[i]
            i += 1
            if ch == "*":
                if i < n and text[i] == "*":
                    i += 1
                    if i < n and text[i] == "/":  # '**/' is '**'
                        i += 1
                    if i >= n:  # '**' at the end: everything below, as in .gitignore
                        if kind == "exact":
                            kind = "prefix"
                        else:
                            regex += ".*"
                            kind = "regex"
                    else:
                        regex += "(.*/)?"
                        kind = "regex"
                    if first:
                        kind = "suffix"
                else:
                    regex += "[^/]*"
                    kind = "regex"
            elif ch == "?":
                regex += "[^/]"
                kind = "regex"
            elif ch in _REGEX_ONLY:
                regex += "\\" + ch
            elif ch == "\\":
                if i < n:
                    regex += "\\" + text[i]
                    i += 1
                    kind = "regex"
                else:
                    regex += "\\\\"
            elif ch in "[]":
                regex += ch
                kind = "regex"
            else:
                regex += ch  # verbatim, as moby does
        if kind == "regex":
            try:
                self._regex = re.compile(regex + "$")
            except re.error as error:
                raise ValueError(f"bad .dockerignore pattern {self.text!r}: {error}") from None
        elif text.count("[") != text.count("]"):
            raise ValueError(f"bad .dockerignore pattern {self.text!r}")
        self._kind = kind

    def matches(self, path: str) -> bool:
        if self._kind == "exact":
            return path == self.text
        if self._kind == "prefix":
            return path.startswith(self.text[:-2])
        if self._kind == "suffix":
            suffix = self.text[2:]
            return path.endswith(suffix) or (suffix.startswith("/") and path == suffix[1:])
        assert self._regex is not None
        return self._regex.match(path) is not None


class Matcher:
    """A list of patterns, applied as Docker does (``MatchesOrParentMatches``)."""

    def __init__(self, patterns: Iterable[str]):
        self.patterns: list[Pattern] = []
        for text in patterns:
            text = text.strip()
            if not text:
                continue
            exclusion = text.startswith("!")
            if exclusion:
                if len(text) == 1:
                    raise ValueError('illegal exclusion pattern: "!"')
                text = text[1:]
            self.patterns.append(Pattern(clean(text), exclusion))
        self.has_exceptions = any(p.exclusion for p in self.patterns)

    def excluded(self, path: str) -> bool:
        """True when ``path`` (relative, slash-separated) is left out of the context."""
        path = clean(path)
        if path == ".":
            return False
        parents = path.split("/")[:-1]
        matched = False
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue  # only a later exception can undo a match, and vice versa
            hit = pattern.matches(path) or any(
                pattern.matches("/".join(parents[: i + 1])) for i in range(len(parents))
            )
            if hit:
                matched = not pattern.exclusion
        return matched

    def may_reinclude_below(self, directory: str) -> bool:
        """Whether an exception could bring back a path under an excluded ``directory``."""
        parts = directory.split("/")
        for pattern in self.patterns:
            if not pattern.exclusion:
                continue
            for own, theirs in zip(pattern.dirs, parts, strict=False):
                if "**" in own:
                    return True
                if not Pattern(own).matches(theirs):
                    break
            else:
                return True
        return False


@dataclass(frozen=True)
class BuildContext:
    """The files of a build context (relative POSIX paths, sorted) and their size."""

    root: Path
    files: tuple[str, ...]
    size: int

    def __contains__(self, path: object) -> bool:
        return path in self.files

    def under(self, directory: str) -> list[str]:
        prefix = directory.rstrip("/") + "/"
        return [f for f in self.files if f.startswith(prefix)]


def load_matcher(root: Path) -> Matcher:
    ignore = root / DOCKERIGNORE
    text = ignore.read_text(encoding="utf-8") if ignore.is_file() else ""
    return Matcher(read_patterns(text))


def build_context(root: Path = PROJECT_ROOT, matcher: Matcher | None = None) -> BuildContext:
    """Walk ``root`` and keep what ``.dockerignore`` (or ``matcher``) does not exclude.

    Symbolic links are entries of their own (Docker sends the link, not its target).
    Excluded directories are not entered unless an exception could re-include something
    below them, so a 700 MB ``.venv`` costs nothing.
    """
    root = Path(root)
    matcher = matcher or load_matcher(root)
    files: list[str] = []
    size = 0
    for current, dirnames, filenames in os.walk(root, followlinks=False):
        relative_dir = Path(current).relative_to(root).as_posix()
        prefix = "" if relative_dir == "." else relative_dir + "/"
        keep = []
        for name in sorted(dirnames):
            rel = prefix + name
            if os.path.islink(os.path.join(current, name)):
                filenames.append(name)  # a link to a directory is sent as a link
            elif not matcher.excluded(rel) or matcher.may_reinclude_below(rel):
                keep.append(name)
        dirnames[:] = keep
        for name in filenames:
            rel = prefix + name
            if not matcher.excluded(rel):
                files.append(rel)
                size += os.lstat(os.path.join(current, name)).st_size
    return BuildContext(root=root, files=tuple(sorted(files)), size=size)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", type=Path, default=PROJECT_ROOT)
    parser.add_argument("--list", action="store_true", help="print every file")
    args = parser.parse_args(argv)
    context = build_context(args.root)
    if args.list:
        print("\n".join(context.files))
    top: dict[str, int] = {}
    for name in context.files:
        head = name.split("/", 1)[0] + ("/" if "/" in name else "")
        top[head] = top.get(head, 0) + 1
    print(", ".join(f"{name} {count}" for name, count in sorted(top.items())))
    print(f"build context: {len(context.files)} files, {context.size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
