"""Chunks of JSON lines to rows of COPY's binary format, checked a column at a time.

The fast path of the PostgreSQL staging (``json_copy``). A chunk's lines are decoded in
one call by msgspec into a struct typed from the table's columns, so the JSON parse, the
integer ranges, finite numbers, the required (NOT NULL) fields and the absence of other
keys are checked in C; what is left (VARCHAR lengths in bytes of UTF-8, NUL characters,
the staging rules, the plays per UTC hour) is checked over whole columns with built-ins,
and the rows are formatted by psycopg's C COPY formatter. A chunk any of that cannot
vouch for (a line of another layout, a number where text goes, a value too long, a NUL,
a broken rule, malformed JSON) goes line by line through ``json_encode.RowEncoder``, the
exact path: both refuse the same records with the same reasons.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import add, attrgetter, eq, floordiv, itemgetter, methodcaller
from typing import Annotated, Any

import msgspec

from sparkify.json_encode import (
    FLOAT_TYPES,
    INTEGER_BITS,
    SOURCE_KEY_COLUMN,
    TEXT_TYPES,
    Column,
    RowEncoder,
    _loads,
)
from sparkify.staging_rejects import RecordError
from sparkify.staging_rules import HOUR_MS, INTEGER_MAX, TableRules, rule_list

# PostgreSQL type names of the staging columns' types, for the binary COPY.
PG_TYPES = {
    "smallint": "int2",
    "integer": "int4",
    "bigint": "int8",
    "double precision": "float8",
    "real": "float4",
    "character varying": "varchar",
    "text": "text",
    "character": "bpchar",
    "timestamp without time zone": "timestamp",
}
# A JSON key no record of the layout holds, for a column the layout lacks (NULL).
_ABSENT = "sparkify: no such key in this layout ({})"
_NUL = b"\\u0000"
# An object's plays: one string per distinct play, its UTC hour number and identity
# values as text joined by NUL, which no staged text holds (they are refused), so
# distinct plays stay distinct. One short string a play keeps the tally small: a tuple
# would keep the row's int and str objects alive too (~2.5x the memory of a big object's
# tally, which is held to the object's end).
Plays = set[str]
_SEP = "\x00"


@dataclass
class Chunk:
    """What one chunk became: binary COPY rows, their count, the refused records as
    (line number, reason, raw line), and the plays its accepted records hold."""

    data: bytes
    rows: int
    rejects: list[tuple[int, str, bytes]] = field(default_factory=list)
    plays: Plays = field(default_factory=set)


def binary_types(columns: Sequence[Column]) -> list[str] | None:
    """The columns' PostgreSQL type names for a binary COPY, or None when one has none."""
    names = [PG_TYPES.get(c.data_type) for c in columns]
    return None if None in names else names  # type: ignore[return-value]


class _Layout:
    """A msgspec decoder of one key layout for one object, and its rows in table order.

    A column the layout has is a field of the struct, read from its key. When the columns
    it lacks are ``source_key`` and the constants, all after the JSON's (the staging
    tables' shape), their values are appended to each row as one tuple (``suffix``).
    Otherwise every column is a field, in table order, and the ones the layout lacks are
    fields no JSON key is expected to name (``absent``: a chunk naming one goes the exact
    way), holding their value by default. Keys no column takes are skipped unparsed.
    """

    def __init__(self, keys: tuple[str, ...], encoder: ChunkEncoder, tail: dict) -> None:
        by_lower = {key.lower(): key for key in keys}
        fields: list[tuple] = []
        self.absent: list[bytes] = []
        self.usable = True
        read = [None if c.name in tail else by_lower.get(c.name) for c in encoder.columns]
        lead = next((n for n, key in enumerate(read) if key is None), len(read))
        trailing = encoder.columns[lead:]
        self.suffix: tuple | None = None
        if lead and trailing and all(c.name in tail for c in trailing):
            self.suffix = tuple(tail[c.name] for c in trailing)
        width = lead if self.suffix is not None else len(encoder.columns)
        for n, (column, key) in enumerate(zip(encoder.columns[:width], read, strict=False)):
            attr = f"c{n}"
            if key is not None:
                fields.append((attr, encoder.field_types[n], msgspec.field(name=key)))
                continue
            name = _ABSENT.format(column.name)
            self.absent.append(msgspec.json.encode(name))
            default = tail.get(column.name)
            if column.name not in tail and not column.nullable:
                self.usable = False  # every record breaks NOT NULL: the exact path says so
            fields.append((attr, Any, msgspec.field(name=name, default=default)))
        used = {f[2].name for f in fields}
        fields += [
            (f"x{n}", msgspec.Raw, msgspec.field(name=key))
            for n, key in enumerate(keys)
            if key not in used
        ]
        struct = msgspec.defstruct(
            "Record", fields, forbid_unknown_fields=True, gc=False, kw_only=True
        )
        self.decoder = msgspec.json.Decoder(struct)
        attrs = [f"c{n}" for n in range(width)]
        self.values = attrgetter(*attrs) if len(attrs) > 1 else _single(attrs[0])

    def rows(self, records: list) -> list[tuple]:
        """The records' rows, in table order."""
        if self.suffix is None:
            return list(map(self.values, records))
        return list(map(add, map(self.values, records), repeat(self.suffix)))


def _single(attr: str) -> Any:
    get = attrgetter(attr)
    return lambda record: (get(record),)


def _field_type(column: Column) -> Any:
    if column.data_type in INTEGER_BITS:
        bits = INTEGER_BITS[column.data_type]
        kind: Any = Annotated[int, msgspec.Meta(ge=-(2 ** (bits - 1)), le=2 ** (bits - 1) - 1)]
    elif column.data_type in FLOAT_TYPES:
        kind = float
    elif column.data_type in TEXT_TYPES and column.max_length is None:
        kind = str
    elif column.data_type in TEXT_TYPES:  # in characters here; in bytes after
        kind = Annotated[str, msgspec.Meta(max_length=column.max_length)]
    else:
        raise ValueError(f"{column.name}: no JSON decoding for {column.data_type}")
    return kind | None if column.nullable else kind


# Chunks of fewer lines go the exact way (a layout is worth building for bigger ones).
FAST_LINES = 16


class ChunkEncoder:
    """Encodes chunks of one table's JSON lines; the same checks as ``RowEncoder``.

    :param columns: the target table's columns, in COPY order.
    :param rules: the table's staging rules, or None.
    :param constants: columns holding one value on every row (not read from the JSON).
    """

    def __init__(
        self,
        columns: Sequence[Column],
        rules: TableRules | None = None,
        constants: Mapping[str, object] | None = None,
    ) -> None:
        from psycopg import postgres
        from psycopg._copy_base import format_row_binary
        from psycopg.adapt import Transformer
        from psycopg.pq import Format

        self.columns = list(columns)
        self.constants = dict(constants or {})
        self.exact = RowEncoder(columns, rules, constants)
        self.types = binary_types(self.columns)
        if self.types is None:
            raise ValueError(f"no binary COPY for the column types of {self.columns}")
        names = [c.name for c in self.columns]
        self.field_types = [
            _field_type(c) if c.data_type in INTEGER_BITS or c.data_type in FLOAT_TYPES
            or c.data_type in TEXT_TYPES else Any
            for c in self.columns
        ]  # fmt: skip
        self._with_key = SOURCE_KEY_COLUMN in names and SOURCE_KEY_COLUMN not in self.constants
        self._layouts: dict[tuple, _Layout] = {}
        self._texts = [
            (n, c)
            for n, c in enumerate(self.columns)
            if c.data_type in TEXT_TYPES and c.max_length is not None and c.name in names
            and c.name not in self.constants and c.name != SOURCE_KEY_COLUMN
        ]  # fmt: skip
        at = {name: n for n, name in enumerate(names)}
        self._rules = _compile_rules(rules, at) if rules else None
        self._play_columns = None
        if rules is not None and rules.plays is not None:
            self._play_columns = (
                at[rules.plays.time_column],
                [at[c] for c in rules.plays.identity],
            )
        oids = [postgres.types.get_oid(t) for t in self.types]
        self._tx = Transformer()
        self._tx.set_dumper_types(oids, Format.BINARY)
        self._format = format_row_binary

    @property
    def counts_plays(self) -> bool:
        return self._play_columns is not None

    def encode(
        self, key: str, first_line: int, lines: Sequence[bytes] | None, data: bytes | None = None
    ) -> Chunk:
        """Rows of ``lines`` (one object's, the first being line ``first_line``).

        :param key: the object (``source_key``, and where a bad record is).
        :param first_line: the line number of ``lines[0]`` in the object.
        :param lines: the lines, blank ones included (they are skipped but counted); None
            when ``data`` is given (it is split only if a record needs the exact path).
        :param data: the lines joined by newlines, when the caller has them so.
        """
        count = len(lines) if lines is not None else data.count(b"\n") + 1  # type: ignore[union-attr]
        fast = self._fast(key, lines, data) if count >= FAST_LINES else None
        if fast is None:
            if lines is None:
                lines = data.split(b"\n")  # type: ignore[union-attr]
            return self._exact(key, first_line, lines)
        rows, get = fast
        plays = self._plays(get) if self._play_columns and rows else set()
        return Chunk(self._binary(rows), len(rows), [], plays)

    def _layout(self, key: str, data: bytes) -> _Layout | None:
        start = 0
        while data[start : start + 1].isspace():  # blank lines first: rare
            start += 1
        end = data.find(b"\n", start)
        first = data[start : None if end < 0 else end]
        if not first:
            return None
        try:
            record = _loads(first)
        except ValueError:
            return None
        if type(record) is not dict:
            return None
        keys = tuple(record)
        layout = self._layouts.get((keys, key))
        if layout is None:
            tail = dict(self.constants)
            if self._with_key:
                tail[SOURCE_KEY_COLUMN] = key
            layout = _Layout(keys, self, tail)
            if len(self._layouts) >= 64:  # bounded: a few objects' layouts at a time
                self._layouts.clear()
            self._layouts[(keys, key)] = layout
        return layout if layout.usable else None

    def _fast(
        self, key: str, lines: Sequence[bytes] | None, data: bytes | None
    ) -> tuple[list[tuple], Any] | None:
        """The chunk's rows in table order and a getter of its columns, or None when a
        record needs the exact path."""
        if data is None:
            data = b"\n".join(lines)  # type: ignore[arg-type]
        layout = self._layout(key, data)
        if layout is None:
            return None
        escaped = b"\\u" in data  # a NUL can only come escaped (JSON forbids it raw)
        if (escaped and _NUL in data) or any(name in data for name in layout.absent):
            return None
        try:
            rows = layout.rows(layout.decoder.decode_lines(data))
        except (msgspec.ValidationError, msgspec.DecodeError):
            return None
        columns: list[tuple] = []

        def get(at: int) -> tuple:
            if not columns:  # the rows turned into columns once, in C, when first asked
                columns.extend(zip(*rows, strict=True))
            return columns[at]

        # ASCII without escapes decodes to ASCII: msgspec's length in characters is bytes.
        if not (data.isascii() and not escaped) and not self._texts_fit(get):
            return None
        if self._rules is not None and not self._rules(get):
            return None
        return rows, get

    def _texts_fit(self, get: Any) -> bool:
        """Whether every text fits its column in bytes of UTF-8."""
        for at, column in self._texts:
            longest = max(map(len, filter(None, get(at))), default=0)
            if longest * 4 <= column.max_length:  # 4 bytes a character at most
                continue
            values = list(filter(None, get(at)))
            if "".join(values).isascii():
                continue
            try:
                if max(map(len, map(str.encode, values))) > column.max_length:
                    return False
            except UnicodeEncodeError:
                return False
        return True

    def _plays(self, get: Any) -> Plays:
        time_at, identity = self._play_columns  # type: ignore[misc]
        selected = self._rules.selected(get) if self._rules else None
        ts = get(time_at)
        ids = [get(at) for at in identity]
        if selected is not None:
            ts = list(compress(ts, selected))
            ids = [list(compress(c, selected)) for c in ids]
        if None in ts or (ts and min(ts) < 0):
            keep = [ms is not None for ms in ts]
            hours: Any = [str(_hour(ms)) for ms in compress(ts, keep)]
            ids = [list(compress(c, keep)) for c in ids]
        else:
            hours = map(str, map(floordiv, ts, repeat(HOUR_MS)))
        texts = [self._as_text(n, values) for n, values in zip(identity, ids, strict=True)]
        return set(map(_SEP.join, zip(hours, *texts, strict=True)))

    def _as_text(self, at: int, values: Any) -> Any:
        """An identity column's values as text, the same whichever path decoded them."""
        kind = self.columns[at].data_type
        if None in values:  # "\\x00N" marks a null: no text holds a NUL
            return [_SEP + "N" if v is None else self._as_text(at, [v])[0] for v in values]
        if kind in TEXT_TYPES:
            return values
        if kind in FLOAT_TYPES:
            return list(map(repr, map(float, values)))
        return list(map(str, values))

    def _exact(self, key: str, first_line: int, lines: Sequence[bytes]) -> Chunk:
        rows, rejects = [], []
        for number, line in enumerate(lines, start=first_line):
            if not line.strip():
                continue
            try:
                rows.append(self.exact.values(line, "", key))
            except RecordError as error:
                rejects.append((number, error.reason, line))
        plays: Plays = set()
        if self._play_columns and rows:  # RowEncoder applied the rules to each row
            columns = list(zip(*rows, strict=True))
            plays = self._plays(columns.__getitem__)
        return Chunk(self._binary(rows), len(rows), rejects, plays)

    def _binary(self, rows: list[tuple]) -> bytes:
        out = bytearray()
        deque(map(self._format, rows, repeat(self._tx), repeat(out)), maxlen=0)
        return bytes(out)


def _hour(ms: int | None) -> int | None:
    if ms is None:
        return None
    # whole hours since the epoch, truncated toward zero as SQL's integer division
    return ms // HOUR_MS if ms >= 0 else -(-ms // HOUR_MS)


class _Rules:
    """A table's staging rules over whole columns (positions in table order)."""

    def __init__(self, rules: TableRules, at: Mapping[str, int]) -> None:
        self.when = (at[rules.when[0]], rules.when[1]) if rules.when else None
        ordered = rule_list(rules)
        self.required = [at[r.column] for r in ordered if r.kind == "required"]
        self.numbers = [at[r.column] for r in ordered if r.kind == "whole_number"]

    def selected(self, get: Any) -> list[bool] | None:
        """Which rows the rules apply to (None: all); ``get(n)`` is column ``n``'s values."""
        if self.when is None:
            return None
        at, value = self.when
        return list(map(eq, get(at), repeat(value)))

    def __call__(self, get: Any) -> bool:
        """Whether every row keeps every rule; ``get(n)`` is column ``n``'s values."""
        selected = self.selected(get)
        for at in self.required:
            values = get(at) if selected is None else compress(get(at), selected)
            if None in values:
                return False
        for at in self.numbers:
            values = get(at) if selected is None else compress(get(at), selected)
            for value in set(values):
                if value is not None and not (
                    value.isdigit()
                    and value.isascii()
                    and (len(value) < 10 or int(value) <= INTEGER_MAX)
                ):
                    return False
        return True


def _compile_rules(rules: TableRules, at: Mapping[str, int]) -> _Rules:
    wanted = {r.column for r in rule_list(rules)} | ({rules.when[0]} if rules.when else set())
    missing = sorted(wanted - set(at))
    if missing:
        raise ValueError(f"{rules.table} lacks the columns its staging rules name: {missing}")
    return _Rules(rules, at)


def hourly_counts(plays: Plays) -> dict[int, int]:
    """Distinct plays per hour number of one object's plays."""
    counts = Counter(map(itemgetter(0), map(methodcaller("partition", _SEP), plays)))
    return {int(hour): count for hour, count in sorted(counts.items(), key=lambda c: int(c[0]))}
