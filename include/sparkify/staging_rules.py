"""What staging refuses, declared once, and compiled for both targets.

The star schema needs more of a staged row than its column types say: a play
(``page = 'NextSong'``) needs its identity (``userid``, ``sessionid``, ``iteminsession``)
for ``songplay_id`` and a ``userid`` that casts to INTEGER for ``users``; a song needs
``song_id``, ``artist_id`` and ``title``. ``RULES`` declares that per staging table, as
data, and two compilers turn one declaration into both targets' checks:

* ``record_check``: a Python function the PostgreSQL loader (``json_copy``) runs on each
  encoded record, returning the reason of the first rule the record breaks;
* ``violation_predicates``: one SQL predicate per rule, in the same order, which the
  Redshift path (``redshift_copy``) evaluates after each COPY to move the rows breaking
  a rule from the staging table to ``staging_rejects``, with the same reason.

One list of rules feeds both, so both targets refuse the same records for the same
reasons. A NUL character (``\\u0000``) is refused in every text field of every table:
PostgreSQL cannot store it (one would fail the whole COPY without naming the line) and
Redshift's COPY rejects the row itself, into its load-error view (see ``redshift_copy``).

What is done with a refused record (``Reject``, ``RejectCollector``) is
``sparkify.staging_rejects``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Literal

from sparkify.sql import identifier

INTEGER_MAX = 2**31 - 1
HOUR_MS = 3_600_000
EPOCH = datetime(1970, 1, 1)


# ----------------------------------------------------------------------------- declarations


def nul_reason(column: str) -> str:
    """Why a record holding a NUL character in ``column`` is refused (every table)."""
    return f"{column} holds a NUL character (\\u0000), which the warehouse cannot store"


@dataclass(frozen=True)
class PlayCount:
    """How the events staging counts plays per object and UTC hour (``staging_counts``).

    :param identity: the columns identifying one play; distinct values are counted.
    :param time_column: the epoch-millisecond column whose UTC hour a play belongs to.
    """

    identity: tuple[str, ...]
    time_column: str


@dataclass(frozen=True)
class TableRules:
    """What a staging table's rows must hold for the star schema to load them.

    :param table: the staging table.
    :param when: ``(column, value)``: the rules apply to rows where ``column = value``
        (the others stage as they are); None applies them to every row.
    :param required: columns that must be present and not null.
    :param whole_numbers: text columns that, when present, must be ASCII digits of a
        value at most INTEGER's maximum (what ``CAST(... AS INTEGER)`` accepts).
    :param plays: how to count the rows the rules select, or None not to count.
    """

    table: str
    when: tuple[str, str] | None = None
    required: tuple[str, ...] = ()
    whole_numbers: tuple[str, ...] = ()
    plays: PlayCount | None = field(default=None)

    def __post_init__(self) -> None:
        names = [self.table, *self.required, *self.whole_numbers]
        if self.when:
            names.append(self.when[0])
            if not self.when[1].replace(" ", "").isalnum() or not self.when[1].isascii():
                raise ValueError(f"{self.when[1]!r}: a rule's value must be ASCII letters/digits")
        if self.plays:
            names += [*self.plays.identity, self.plays.time_column]
        for name in names:
            identifier(name)  # raises ValueError naming a bad one

    @property
    def condition(self) -> str:
        """The rules' scope in words, for reasons."""
        return f"{self.when[0]} = '{self.when[1]}'" if self.when else "every record"


RULES: dict[str, TableRules] = {
    rules.table: rules
    for rules in (
        TableRules(
            table="staging_events",
            when=("page", "NextSong"),
            required=("userid", "sessionid", "iteminsession"),
            whole_numbers=("userid",),
            plays=PlayCount(identity=("userid", "sessionid", "iteminsession"), time_column="ts"),
        ),
        TableRules(table="staging_songs", required=("song_id", "artist_id", "title")),
    )
}


def rules_for(table: str) -> TableRules | None:
    """The declared rules of staging table ``table``, or None when it has none."""
    return RULES.get(table)


@dataclass(frozen=True)
class Rule:
    """One rule of a table, in check order: ``kind`` of check on ``column``, and why."""

    column: str
    kind: Literal["required", "whole_number"]
    reason: str


def rule_list(rules: TableRules) -> list[Rule]:
    """The table's rules in the order both targets check them: required, then numbers."""
    scope = "" if rules.when is None else f" (needed when {rules.condition})"
    return [
        *(Rule(c, "required", f"{c} is missing or null{scope}") for c in rules.required),
        *(
            Rule(c, "whole_number", f"{c} is not a whole number up to {INTEGER_MAX}{scope}")
            for c in rules.whole_numbers
        ),
    ]


def _columns_of(rules: TableRules, column_names: Sequence[str]) -> dict[str, int]:
    index = {name: n for n, name in enumerate(column_names)}
    wanted = [r.column for r in rule_list(rules)] + ([rules.when[0]] if rules.when else [])
    if rules.plays:
        wanted += [*rules.plays.identity, rules.plays.time_column]
    missing = sorted({name for name in wanted if name not in index})
    if missing:
        raise ValueError(f"{rules.table} lacks the columns its staging rules name: {missing}")
    return index


# ----------------------------------------------------------------------------- Python


def _getter(indexes: Sequence[int]) -> Callable[[Sequence[str]], tuple[str, ...]]:
    # itemgetter builds the tuple in C; with one index it returns the bare item instead.
    if len(indexes) == 1:
        only = indexes[0]
        return lambda fields: (fields[only],)
    return itemgetter(*indexes)


# An object's plays as they are collected: hour number -> the plays' identities, each the
# identity fields' COPY texts joined by a tab (COPY text escapes a tab inside a field, so
# distinct identities stay distinct; one short string per play keeps the tally small).
PlayTally = dict[int, set[str]]
RecordCheck = Callable[[Sequence[str], "PlayTally | None"], "str | None"]


def record_check(rules: TableRules, column_names: Sequence[str], null_text: str) -> RecordCheck:
    """A function of one encoded record returning the first broken rule's reason, or None.

    It runs once per record on the PostgreSQL path, so it is built for speed: the checks
    are compiled to column positions, and an accepted record the rules count is added to
    the ``plays`` tally it is given (``hourly_plays`` turns it into counts).

    :param rules: the table's declaration.
    :param column_names: the encoded fields' columns, in order.
    :param null_text: how a field encodes NULL (COPY text's ``\\N``).
    """
    index = _columns_of(rules, column_names)
    ordered = rule_list(rules)
    required = [index[r.column] for r in ordered if r.kind == "required"]
    get_required = _getter(required) if required else None
    numbers = [(index[r.column], r.reason) for r in ordered if r.kind == "whole_number"]
    reasons = {index[r.column]: r.reason for r in ordered if r.kind == "required"}
    when_at, when_value = (index[rules.when[0]], rules.when[1]) if rules.when else (None, None)
    time_at, get_identity = None, None
    if rules.plays is not None:
        time_at = index[rules.plays.time_column]
        get_identity = _getter([index[c] for c in rules.plays.identity])

    def check(fields: Sequence[str], plays: PlayTally | None) -> str | None:
        if when_at is not None and fields[when_at] != when_value:
            return None
        if get_required is not None and null_text in get_required(fields):
            return next(reasons[at] for at in required if fields[at] == null_text)
        for at, reason in numbers:
            value = fields[at]
            if value != null_text and not (
                value.isdigit()
                and value.isascii()
                and (len(value) < 10 or int(value) <= INTEGER_MAX)
            ):
                return reason
        if plays is not None and time_at is not None and fields[time_at] != null_text:
            ms = int(fields[time_at])
            # whole hours since the epoch, truncated toward zero as SQL's integer division
            hour = ms // HOUR_MS if ms >= 0 else -(-ms // HOUR_MS)
            identities = plays.get(hour)
            if identities is None:
                identities = plays[hour] = set()
            identities.add("\t".join(get_identity(fields)))
        return None

    return check


def hourly_plays(plays: PlayTally) -> dict[int, int]:
    """Distinct plays per hour (whole hours since the epoch) of one object's tally.

    :param plays: the tally ``record_check`` filled.
    """
    return {hour: len(identities) for hour, identities in sorted(plays.items())}


def hour_start(hour_number: int) -> datetime:
    """The naive UTC start of whole hour ``hour_number`` since the epoch."""
    return EPOCH + timedelta(hours=hour_number)


# ----------------------------------------------------------------------------- SQL


def _number_check(column: str) -> str:
    # Digits only, at most INTEGER's maximum once leading zeros are dropped (the value's
    # digits then compare as text); written in the SQL PostgreSQL and Redshift share.
    digits = f"LTRIM({column}, '0')"
    return (
        f"{column} ~ '^[0-9]+$' AND (LENGTH({digits}) < 10 OR "
        f"(LENGTH({digits}) = 10 AND {digits} <= '{INTEGER_MAX}'))"
    )


def scope_predicate(rules: TableRules) -> str:
    """The rows the rules apply to, as SQL (``TRUE`` for every row)."""
    if rules.when is None:
        return "TRUE"
    return f"{identifier(rules.when[0])} = '{rules.when[1]}'"


def violation_predicates(rules: TableRules) -> list[str]:
    """Per rule of ``rule_list`` (same order), SQL true on a row that breaks it.

    A row breaking several rules is the first one's, as in ``record_check``.
    """
    scope = scope_predicate(rules)
    predicates = []
    for rule in rule_list(rules):
        column = identifier(rule.column)
        if rule.kind == "required":
            broken = f"{column} IS NULL"
        else:
            broken = f"{column} IS NOT NULL AND NOT ({_number_check(column)})"
        predicates.append(broken if scope == "TRUE" else f"{scope} AND {broken}")
    return predicates
