"""The SQL of the Redshift staging path (``sparkify.redshift_copy``).

Redshift's native ``COPY`` of JSON from S3 and its credentials, which only Redshift
speaks; then the statements run after each COPY on the rows it has just loaded (those
whose ``source_key`` is still NULL): the staging rules' pass, naming the object, counting
the plays. Those are written in the SQL PostgreSQL and Redshift share, so the tests run
them on PostgreSQL too. Names are validated identifiers (``sparkify.sql``); COPY's
options take no bind parameters, so its literals are validated instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sparkify.sql import column_list, identifier


def _literal(value: str, what: str) -> str:
    """A single-quoted SQL literal for COPY's options (which take no bind parameters)."""
    if not isinstance(value, str) or "'" in value or "\\" in value or not value.isprintable():
        raise ValueError(f"{what} must be printable text without quotes or backslashes")
    return f"'{value}'"


def redshift_iam_role(role_arn: str) -> str:
    if not re.fullmatch(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+", role_arn):
        raise ValueError("iam_role must be an IAM role ARN (arn:aws:iam::<account>:role/<name>)")
    return f"IAM_ROLE {_literal(role_arn, 'iam_role')}"


def redshift_access_keys(access_key: str, secret_key: str, token: str | None = None) -> str:
    parts = f"aws_access_key_id={access_key};aws_secret_access_key={secret_key}"
    if token:
        parts += f";token={token}"
    return f"CREDENTIALS {_literal(parts, 'AWS credentials')}"


def redshift_copy(
    *,
    table: str,
    s3_url: str,
    credentials: str,
    json_paths: str = "auto ignorecase",
    region: str | None = None,
    max_errors: int = 0,
    columns: Sequence[str] | None = None,
    manifest: bool = False,
) -> str:
    """Redshift's native ``COPY`` of JSON objects under ``s3_url`` into ``table``.

    ``json_paths`` is ``'auto'``, ``'auto ignorecase'`` or an ``s3://`` jsonpaths file.
    Epoch-millisecond ``ts`` stays a BIGINT, so TIMEFORMAT only matters for timestamp
    columns; it is set to the events' unit all the same. ``columns`` limits the load to
    those columns (the others, e.g. ``source_key``, get NULL, whatever the JSON holds);
    with ``manifest``, ``s3_url`` is a manifest listing the exact objects to load (a plain
    URL is a key *prefix*: it also loads every object whose key starts with it).
    """
    if not (json_paths in ("auto", "auto ignorecase") or json_paths.startswith("s3://")):
        raise ValueError("json_paths must be 'auto', 'auto ignorecase' or an s3:// jsonpaths file")
    if not isinstance(max_errors, int) or max_errors < 0:
        raise ValueError("max_errors must be a non-negative integer")
    target = f"{table} ({column_list(columns)})" if columns is not None else table
    lines = [
        f"COPY {target}",
        f"FROM {_literal(s3_url, 's3_url')}",
        credentials,
        *(["MANIFEST"] if manifest else []),
        f"FORMAT AS JSON {_literal(json_paths, 'json_paths')}",
    ]
    if region:
        if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", region):
            raise ValueError(f"{region!r} is not an AWS region name")
        lines.append(f"REGION {_literal(region, 'region')}")
    lines += [
        "TIMEFORMAT 'epochmillisecs'",
        f"MAXERROR {max_errors}",
        "COMPUPDATE OFF STATUPDATE OFF",
    ]
    return "\n".join(lines)


def set_source_key(table: str, per_run: bool = False) -> str:
    """Name the object of the rows a COPY has just loaded (bind: ``source_key``) and, for
    a run-partitioned table, their run (binds: ``run_id``, ``staged_at``).

    The COPY's column list leaves these NULL, so NULL marks exactly those rows (the load
    holds the table's lock: no other run's COPY is in between).
    """
    run = ", run_id = %(run_id)s, staged_at = %(staged_at)s" if per_run else ""
    return f"UPDATE {table} SET source_key = %(source_key)s{run} WHERE source_key IS NULL"  # noqa: S608


def _any_of(predicates: Sequence[str]) -> str:
    if not predicates:
        raise ValueError("no rule predicates given")
    return " OR ".join(f"({p})" for p in predicates)


def select_rule_violations(table: str, columns: Sequence[str], predicates: Sequence[str]) -> str:
    """The just-copied rows (``source_key IS NULL``) that break a staging rule.

    Each row comes with the number of the first predicate it matches (the rule's position
    in ``sparkify.staging_rules.rule_list``), then ``columns``; at most ``%(limit)s`` rows.
    ``predicates`` are compiled by ``staging_rules.violation_predicates`` from validated
    identifiers.
    """
    cases = " ".join(f"WHEN {p} THEN {n}" for n, p in enumerate(predicates))
    return (
        f"SELECT CASE {cases} END AS rule_number, {column_list(columns)} "  # noqa: S608
        f"FROM {table} WHERE source_key IS NULL AND ({_any_of(predicates)}) "
        "LIMIT %(limit)s"
    )


def delete_rule_violations(table: str, predicates: Sequence[str]) -> str:
    """Drop the just-copied rows that break a staging rule (after recording them)."""
    return f"DELETE FROM {table} WHERE source_key IS NULL AND ({_any_of(predicates)})"  # noqa: S608


def count_plays(
    table: str,
    counts_table: str,
    identity: Sequence[str],
    time_column: str,
    scope: str,
    per_run: bool = False,
) -> str:
    """Count one object's rows in ``table`` per UTC hour of ``time_column`` (epoch ms) into
    ``counts_table``: distinct ``identity`` among the rows ``scope`` selects (of the run
    ``run_id`` only, in a run-partitioned table).

    Binds: ``table_name``, ``source_key``, ``run_id``, ``counted_at``. ``scope`` is a
    predicate compiled by ``staging_rules.scope_predicate``.
    """
    time = identifier(time_column)
    if per_run:
        scope = f"run_id = %(run_id)s AND {scope}"
    return (
        f"INSERT INTO {counts_table} "  # noqa: S608 - validated identifiers
        "(table_name, source_key, hour_start, plays, run_id, counted_at) "
        "SELECT %(table_name)s, %(source_key)s, "
        "TIMESTAMP 'epoch' + hour_number * 3600 * INTERVAL '1 second', COUNT(*), "
        "%(run_id)s, %(counted_at)s "
        f"FROM (SELECT DISTINCT {column_list(identity)}, {time} / 3600000 AS hour_number "
        f"FROM {table} WHERE source_key = %(source_key)s AND {scope}) AS plays "
        "GROUP BY hour_number"
    )
