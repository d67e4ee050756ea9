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
_COLUMN = re.compile(r"^\s*(?P<name>[a-z_][a-z0-9_]*)\s+[A-Z]")
_CONSTRAINTS = ("PRIMARY", "UNIQUE", "FOREIGN", "CONSTRAINT", "CHECK")


@cache
def tables() -> dict[str, tuple[str, ...]]:
    """Table name -> its column names in order, for every table of the DDL."""
    found = {}
    for match in _CREATE.finditer(read_sql("create_tables")):
        columns = []
        for line in match["body"].splitlines():
            code = line.split("--", 1)[0]
            column = _COLUMN.match(code)
            if column and column["name"].upper() not in _CONSTRAINTS:
                columns.append(column["name"])
        found[match["name"]] = tuple(columns)
    return found


def table_columns(table: str) -> list[str]:
    """The columns of ``table`` in DDL order; ``KeyError`` naming it when there is none."""
    try:
        return list(tables()[table])
    except KeyError:
        raise KeyError(
            f"table {table!r} is not declared in include/sql/create_tables.sql "
            f"(declared: {', '.join(sorted(tables()))})"
        ) from None
