"""JSON lines to COPY text: the staging columns' types and the row encoder.

Column ``c`` takes the JSON key whose lower-case form is ``c`` (``userId`` -> ``userid``),
the mapping Redshift's ``FORMAT AS JSON 'auto ignorecase'`` uses, and text lengths are
measured as Redshift measures VARCHAR, in bytes of UTF-8, so both targets stage the same
rows. The table's staging rules (``sparkify.staging_rules``) are applied to each record,
and the plays they select are counted per object and UTC hour as the records enter.
No database here: ``json_copy`` streams what this encodes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sparkify.staging_rejects import RecordError, RejectCollector
from sparkify.staging_rules import PlayTally, TableRules, nul_reason, record_check

INTEGER_BITS = {"smallint": 16, "integer": 32, "bigint": 64}
INTEGER_TYPES = set(INTEGER_BITS)
FLOAT_TYPES = {"double precision", "real", "numeric"}
TEXT_TYPES = {"character varying", "text", "character"}

try:  # orjson parses several times faster; the json module is the fallback
    from orjson import loads as _loads
except ImportError:  # pragma: no cover - orjson is in the lock
    from json import loads as _loads


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str
    nullable: bool
    max_length: int | None = None


def _escape(text: str) -> str:
    # COPY's text format: backslash, tab, newline and carriage return must be escaped.
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = (
            text.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return text


def _converter(column: Column) -> Callable[[object], object]:
    """A function turning a JSON value into the column's Python value, or raising TypeError.

    The value is what the column stores: an ``int`` for integer columns, an ``int`` or a
    finite ``float`` for number columns, a ``str`` for text (numbers, booleans and nested
    JSON as their text). Each starts with a fast path for the type the column expects.
    """
    if column.data_type in INTEGER_TYPES:
        bits = INTEGER_BITS[column.data_type]
        low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

        def to_integer(value: object) -> int:
            if type(value) is int and low <= value <= high:
                return value
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{column.name} must be an integer, got {value!r}")
            if isinstance(value, float) and not value.is_integer():
                raise TypeError(f"{column.name} must be an integer, got {value!r}")
            if not low <= value <= high:
                raise TypeError(f"{column.name} {value!r} is out of the {column.data_type} range")
            return int(value)

        return to_integer
    if column.data_type in FLOAT_TYPES:

        def to_float(value: object) -> int | float:
            if type(value) is float and math.isfinite(value):
                return value
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{column.name} must be a number, got {value!r}")
            if isinstance(value, float):
                raise TypeError(f"{column.name} must be a finite number, got {value!r}")
            return value

        return to_float

    max_length = column.max_length
    # Below this many characters a text fits whatever it holds (UTF-8 takes at most 4
    # bytes per character), so only longer non-ASCII texts are encoded to be measured.
    sure_fit = (max_length or 0) // 4

    def to_text(value: object) -> str:
        if type(value) is str:
            text = value
        elif isinstance(value, dict | list):
            text = json.dumps(value, ensure_ascii=False)
        elif isinstance(value, bool):
            text = "true" if value else "false"
        else:
            text = str(value)
        if max_length is not None and len(text) > sure_fit:
            check_length(column, text)
        return text

    return to_text


def check_length(column: Column, text: str) -> None:
    """Raise TypeError when ``text`` is longer than ``column`` holds, in bytes of UTF-8.

    Redshift's VARCHAR(n) holds n bytes: measured as it does, on both targets.
    """
    size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    if column.max_length is not None and size > column.max_length:
        raise TypeError(
            f"{column.name} is {size:,} bytes of UTF-8, "
            f"longer than the column's {column.max_length:,}"
        )


def copy_text(value: object) -> str:
    """A column value (as a converter returns it, or a constant) as COPY text."""
    if value is None:
        return NULL_TEXT
    if type(value) is str:
        return _escape(value)
    if type(value) is float:
        return repr(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return _escape(str(value))


# A staging column of this name records which object each row came from (it is not read
# from the JSON): incremental loads replace the rows of changed objects by it.
SOURCE_KEY_COLUMN = "source_key"
NULL_TEXT = "\\N"  # COPY text's NULL


class RowEncoder:
    """Turns one JSON line into one row of the given columns: values, or COPY text.

    Lines of one source share their keys' spelling and order, so the mapping from JSON
    keys to columns is worked out once per distinct key tuple and reused. This is the
    exact, one record at a time path: ``json_batch`` decodes whole chunks faster and
    comes here for the records it cannot vouch for, so both refuse the same records with
    the same reasons.

    :param columns: the target table's columns, in COPY order.
    :param rules: the table's staging rules (checked on each record, and its plays
        counted), or None for types only. A NUL character is refused in any text either way.
    :param constants: columns not read from the JSON, holding the same value on every row
        (e.g. the run's id); ``source_key`` holds each row's object.
    """

    def __init__(
        self,
        columns: Sequence[Column],
        rules: TableRules | None = None,
        constants: Mapping[str, object] | None = None,
    ) -> None:
        self.columns = list(columns)
        self.constants = dict(constants or {})
        unknown = sorted(set(self.constants) - {c.name for c in self.columns})
        if unknown:
            raise ValueError(f"constants for columns the table lacks: {unknown}")
        self._converters = [(c.name, c.nullable, _converter(c)) for c in self.columns]
        self._plans: dict[tuple[str, ...], list[tuple[object, str, bool, Callable]]] = {}
        names = [c.name for c in self.columns]
        self._text = [
            (n, c.name)
            for n, c in enumerate(self.columns)
            if c.data_type in TEXT_TYPES and c.name not in self.constants
        ]
        self._check = record_check(rules, names, NULL_TEXT) if rules else None
        self.counts_plays = rules is not None and rules.plays is not None

    def _plan(self, keys: tuple[str, ...]) -> list[tuple[object, str, bool, Callable]]:
        """Per column: where its value comes from (a JSON key, None: absent, SOURCE_KEY,
        or _CONSTANT), its name, nullability, converter."""
        by_lower = {key.lower(): key for key in keys}
        plan = []
        for name, nullable, convert in self._converters:
            if name in self.constants:
                source: object = _CONSTANT
            elif name == SOURCE_KEY_COLUMN:
                source = SOURCE_KEY_COLUMN
            else:
                source = by_lower.get(name)
            plan.append((source, name, nullable, convert))
        if len(self._plans) < 1024:  # bounded, whatever the input
            self._plans[keys] = plan
        return plan

    def values(
        self,
        line: bytes | str,
        where: str,
        source_key: str | None = None,
        plays: PlayTally | None = None,
    ) -> tuple:
        """One JSON line as the row's values in column order, or ``RecordError`` saying why not.

        :param line: the JSON text of one record.
        :param where: the record's object and line, for the error.
        :param source_key: what the ``source_key`` column (if any) holds.
        :param plays: the object's plays so far; an accepted record the rules count is
            added to it (see ``staging_rules.record_check``).
        """
        try:
            record = _loads(line)
        except ValueError as exc:
            raise RecordError(where, f"malformed JSON ({exc})") from None
        if type(record) is not dict:
            raise RecordError(where, f"expected a JSON object, got {type(record).__name__}")
        keys = tuple(record)
        plan = self._plans.get(keys) or self._plan(keys)
        values = []
        for source, name, nullable, convert in plan:
            if source is _CONSTANT:
                values.append(self.constants[name])
                continue
            if source is None:
                value = None
            elif source is SOURCE_KEY_COLUMN:
                value = source_key
            else:
                value = record[source]
            if value is None:
                if not nullable:
                    raise RecordError(where, f"required field {name!r} is missing or null")
                values.append(None)
                continue
            try:
                values.append(convert(value))
            except TypeError as exc:
                raise RecordError(where, str(exc)) from None
        for at, name in self._text:
            if values[at] is not None and "\x00" in values[at]:
                raise RecordError(where, nul_reason(name))
        if self._check is not None:
            reason = self._check([copy_text(v) for v in values], plays)
            if reason is not None:
                raise RecordError(where, reason)
        return tuple(values)

    def encode(
        self,
        line: bytes | str,
        where: str,
        source_key: str | None = None,
        plays: PlayTally | None = None,
    ) -> str:
        """One JSON line as one line of COPY text (see ``values``)."""
        return "\t".join(map(copy_text, self.values(line, where, source_key, plays))) + "\n"


_CONSTANT = object()  # a plan's marker: the column holds one of ``constants``


def encode_object(
    key: str,
    lines: Iterable[bytes],
    encoder: RowEncoder,
    rejects: RejectCollector | None = None,
    plays: PlayTally | None = None,
) -> Iterator[str]:
    """COPY text lines for one object's JSON lines; blank lines are skipped.

    :param key: the object's key (``source_key``, and where a bad record is).
    :param lines: its lines.
    :param encoder: the table's encoder.
    :param rejects: where bad records are set aside; without it the first one raises
        ``RecordError``.
    :param plays: the object's plays, collected as records are accepted.
    """
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            # ``where`` is only spelled out for a bad record: most lines never need it.
            yield encoder.encode(line, "", key, plays)
        except RecordError as error:
            error = RecordError(f"{key} line {number}", error.reason)
            if rejects is None:
                raise error from None
            rejects.add(key, number, error, line)
