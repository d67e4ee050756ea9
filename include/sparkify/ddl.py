"""The warehouse's tables as the DDL declares them (``include/sql/create_tables.sql``).

Loads insert by column name; the column list comes from here, the one place that defines
the tables, instead of asking the database before every load.
"""

from __future__ import annotations

import re
from functools import cache

from sparkify.sql import read_sql

_CREATE = re.compile(
    r'CREATE TABLE IF NOT EXISTS\s+"?(?P<name>[a-z_][a-z0-9_]*)"?\s*\((?P<body>.*?)\n\)\s*(?:;|\Z)',
    re.DOTALL,
)
# A column line: its name, then its type (one or two words, an optional size), which
# ends before any constraint (NOT NULL, PRIMARY KEY).
_COLUMN = re.compile(
    r"^\s*(?P<name>[a-z_][a-z0-9_]*)\s+"
    r"(?P<type>[A-Z]+(?: (?!NOT\b|PRIMARY\b)[A-Z]+)?(?:\([0-9, ]+\))?)"
)
_CONSTRAINTS = ("PRIMARY", "UNIQUE", "FOREIGN", "CONSTRAINT", "CHECK")


@cache
def declarations() -> dict[str, dict[str, str]]:
    """Table name -> column name -> its type as declared (``VARCHAR(256)``), in DDL order."""
    found = {}
    for match in _CREATE.finditer(read_sql("create_tables")):
        columns = {}
        for line in match["body"].splitlines():
            code = line.split("--", 1)[0].rstrip()
            column = _COLUMN.match(code)
            if column and column["name"].upper() not in _CONSTRAINTS:
                columns[column["name"]] = column["type"].strip()
        found[match["name"]] = columns
    return found


def tables() -> dict[str, tuple[str, ...]]:
    """Table name -> its column names in order, for every table of the DDL."""
    return {name: tuple(columns) for name, columns in declarations().items()}


def table_columns(table: str) -> list[str]:
    """The columns of ``table`` in DDL order; ``KeyError`` naming it when there is none."""
    return list(column_types(table))


def column_types(table: str) -> dict[str, str]:
    """Column -> declared type of ``table``, in DDL order; ``KeyError`` naming it if absent."""
    try:
        return dict(declarations()[table])
    except KeyError:
        raise KeyError(
            f"table {table!r} is not declared in include/sql/create_tables.sql "
            f"(declared: {', '.join(sorted(declarations()))})"
        ) from None
