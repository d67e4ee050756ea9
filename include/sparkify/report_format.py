"""Values of a report as text: times, durations, counts, and Markdown that stays inert.

``md_text`` escapes what could start Markdown markup; ``md_code`` makes a code span safe
inside a table cell (HTML in it is shown, not run). Both return ``MarkdownSafe``, which
the Markdown template passes through unchanged while it escapes every other value (the
Markdown counterpart of HTML autoescaping; see ``sparkify.report_render``).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sparkify.report_model import Count, TableCount, utc

MAX_TEXT = 200  # characters of a free-text value (a reason, an observed value) shown


class MarkdownSafe(str):
    """Text that is already Markdown: the Markdown template prints it as it is."""

    __slots__ = ()


def format_time(moment: datetime | None) -> str:
    """``2018-11-02 00:00:00 UTC`` (naive datetimes are UTC); ``-`` for none."""
    moment = utc(moment)
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def format_duration(seconds: float | None) -> str:
    """``0.8 s``, ``12.0 s``, ``3 min 05 s``, ``1 h 02 min``; ``-`` for none."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def format_count(count: Count, known: bool = True) -> str:
    """``1,125``; ``absent`` for a table that does not exist; ``unknown`` when not known."""
    if not known:
        return "unknown"
    return "absent" if count is None else f"{count:,}"


def format_change(row: TableCount, before_known: bool, after_known: bool) -> str:
    """``+125``, ``-10``, ``0``; empty when either count is unknown or the table is absent."""
    if not (before_known and after_known) or row.after is None:
        return ""
    change = row.after - (row.before or 0)
    return f"{change:+,}" if change else "0"


def shorten(value: Any, limit: int = MAX_TEXT) -> str:
    """``value`` on one line, cut to ``limit`` characters (``…`` marks a cut)."""
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def md_code(value: Any, limit: int = MAX_TEXT) -> MarkdownSafe:
    """A Markdown code span safe inside a table cell: HTML in it is shown, not run."""
    text = shorten(value, limit).replace("|", "\\|")
    if not text:
        return MarkdownSafe("")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return MarkdownSafe(f"{fence}{pad}{text}{pad}{fence}")


_MARKUP = re.compile(r"([\\`*\[\]<>|]|(?<!\w)_|_(?!\w))")


def md_text(value: Any) -> MarkdownSafe:
    """Plain text for Markdown: the characters that could start markup escaped.

    (Underscores inside words, as in task ids, are no markup in CommonMark: left alone.)
    Text that is already ``MarkdownSafe`` is returned as it is.
    """
    if isinstance(value, MarkdownSafe):
        return value
    return MarkdownSafe(_MARKUP.sub(r"\\\1", shorten(value, 10 * MAX_TEXT)))
