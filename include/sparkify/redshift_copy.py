"""Stage JSON objects from S3 into Redshift: exact keys, every lost row accounted for.

The Redshift path of the staging operator (no astro, no Airflow here: the caller hands in
a cursor inside its transaction and an S3 client). Per load:

1. **Exact keys.** ``COPY ... FROM 's3://bucket/key'`` is a key *prefix* match: it also
   loads ``key.bak`` or, for a folder, objects not ending in ``.json``. So every COPY
   reads a manifest listing exactly the keys the PostgreSQL path would read (each
   ``"mandatory": true``: a key gone by then fails the COPY naming it), written to the
   data bucket under ``_sparkify/manifests/<run id>/`` through the AWS connection.
2. **Rows attributed to their object.** A table whose rules count plays (the events) is
   copied one key per COPY, with a column list that leaves ``source_key`` NULL: after
   each COPY the NULL rows are exactly the ones it loaded, and they are then named after
   their key. Other tables (the ~15,000 song files) are one COPY of all keys; their
   rows keep ``source_key`` NULL and a row a rule refuses is named after the manifest.
3. **Nothing disappears.** After each COPY, the rows it skipped (``MAXERROR``) are read
   from ``STL_LOAD_ERRORS`` (provisioned) or ``SYS_LOAD_ERROR_DETAIL`` (Serverless) for
   ``pg_last_copy_id()``, with file, line and reason; then the rows breaking a staging
   rule (``sparkify.staging_rules``, the same declaration the PostgreSQL loader applies)
   are read, with the rule as reason, and deleted. Both become ``Reject`` records; more
   than ``max_rejects`` over the whole load raise ``TooManyRejectsError`` naming the
   first ones, and the caller's transaction rolls everything back.
4. **Plays counted.** Per key, after its rule pass: distinct plays per UTC hour, by SQL
   over that key's rows of this run, into the counts table (the run's earlier counts
   are cleared before the first COPY).
5. **Runs kept apart.** In a run-partitioned table (``run_id``/``staged_at`` columns,
   see ``sparkify.staging_tables``) the rows a COPY loaded are named after their run as
   well as their object. The caller holds the tables' locks, so the NULL marks of step
   2 are never another run's.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sparkify import redshift_sql, sql, staging_rules, staging_tables
from sparkify.json_encode import SOURCE_KEY_COLUMN
from sparkify.staging_rejects import RecordError, Reject, RejectCollector, StagingError
from sparkify.staging_rules import PlayCount, TableRules

log = logging.getLogger(__name__)

LoadErrorsView = Literal["stl", "sys"]
MANIFEST_PREFIX = "_sparkify/manifests"
_SERVERLESS_HOST = re.compile(r"\.redshift-serverless\.amazonaws\.com(\.cn)?$")


class ManifestError(RuntimeError):
    """A COPY manifest could not be written to S3; says where and what to grant."""


def load_errors_view(host: str | None, extra: Mapping[str, Any]) -> LoadErrorsView:
    """Where Redshift records the rows a COPY skipped: ``"sys"`` on Serverless, else ``"stl"``.

    Serverless has no STL views, and STL_LOAD_ERRORS is the view documented with
    ``pg_last_copy_id()`` on provisioned clusters. Trying one and falling back is not an
    option: a failed query aborts the load's transaction. So the view follows the
    warehouse connection: its extra ``"redshift-serverless": true`` (PostgresHook's own
    flag, which it keeps from the database driver) or a Serverless endpoint as host
    (``<workgroup>.<account>.<region>.redshift-serverless.amazonaws.com``).

    :param host: the warehouse connection's host.
    :param extra: the connection's extra, parsed.
    """
    flag = extra.get("redshift-serverless", False)
    if isinstance(flag, str):
        flag = flag.strip().lower() == "true"
    return "sys" if flag or (host and _SERVERLESS_HOST.search(host.lower())) else "stl"


def _safe(text: str, keep: str = "") -> str:
    # S3 accepts nearly anything, but the manifest's URL ends up in a COPY literal, which
    # refuses quotes and backslashes: keep a conservative set of characters.
    return re.sub(rf"[^A-Za-z0-9._{re.escape(keep)}-]", "_", text) or "_"


def manifest_key(run_id: str, table_name: str, source_key: str | None = None) -> str:
    """Where the manifest of one COPY goes: one per table and run, or per key.

    :param run_id: the DAG run (made file-safe: ``:`` and ``+`` become ``_``).
    :param table_name: the staging table.
    :param source_key: the one key of a per-key COPY, or None for a COPY of every key.
    """
    folder = f"{MANIFEST_PREFIX}/{_safe(run_id)}"
    if source_key is None:
        return f"{folder}/{table_name}.manifest"
    return f"{folder}/{table_name}/{_safe(source_key, keep='/')}.manifest"


def manifest_body(bucket: str, keys: Sequence[str]) -> bytes:
    """A Redshift COPY manifest listing ``keys`` of ``bucket``, each mandatory."""
    entries = [{"url": f"s3://{bucket}/{key}", "mandatory": True} for key in keys]
    return json.dumps({"entries": entries}, indent=1).encode()


@dataclass(frozen=True)
class RedshiftStaging:
    """What a Redshift load needs to know.

    :param schema: the staging table's schema.
    :param table_name: the staging table (declared in ``create_tables.sql``).
    :param bucket: the data bucket (manifests go under ``_sparkify/manifests/`` in it).
    :param credentials: the COPY's rendered ``IAM_ROLE``/``CREDENTIALS`` clause; never logged.
    :param run_id: the DAG run, for the manifests' folder and the counts' ``run_id``.
    :param json_paths: ``FORMAT AS JSON`` argument.
    :param region: the bucket's region, or None.
    :param max_rejects: bad rows tolerated over the whole load (also each COPY's MAXERROR).
    :param errors_view: ``"stl"`` or ``"sys"`` (``load_errors_view``).
    :param counts_table: the plays-per-hour table, or None not to count.
    """

    schema: str
    table_name: str
    bucket: str
    credentials: str
    run_id: str
    json_paths: str = "auto ignorecase"
    region: str | None = None
    max_rejects: int = 0
    errors_view: LoadErrorsView = "stl"
    counts_table: str | None = "staging_counts"


@dataclass(frozen=True)
class RedshiftLoad:
    """What a Redshift load staged: rows kept, COPY statements run, records set aside."""

    rows: int
    copies: int
    rejects: list[Reject]


def stage(cursor: Any, client: Any, settings: RedshiftStaging, keys: Sequence[str]) -> RedshiftLoad:
    """COPY ``keys`` into the staging table (emptied, or of the run's rows) and account
    for every row. The caller holds the locks of the tables the load writes.

    :param cursor: a cursor inside the caller's transaction.
    :param client: a boto3 S3 client of the AWS connection (writes the manifests).
    :param settings: the load's settings.
    :param keys: the exact objects to load, as the PostgreSQL path would list them.
    """
    table = sql.qualified(settings.schema, settings.table_name)
    rules = staging_rules.rules_for(settings.table_name)
    found = staging_tables.table_columns(cursor, settings.schema, settings.table_name)
    found = staging_tables.ensure_declared_columns(
        cursor, settings.schema, settings.table_name, found, "redshift"
    )
    per_run = staging_tables.is_run_partitioned(found)
    if rules is not None and all(c.name != SOURCE_KEY_COLUMN for c in found):
        raise StagingError(
            f"{settings.table_name} needs a {SOURCE_KEY_COLUMN} column for its staging rules"
        )
    # Everything the JSON can fill; source_key (and the run's columns) stay NULL until
    # named (see the module doc).
    filled = {SOURCE_KEY_COLUMN, staging_tables.RUN_COLUMN, staging_tables.STAGED_AT_COLUMN}
    columns = [c.name for c in found if c.name not in filled]
    per_key = rules is not None and rules.plays is not None
    if per_key and settings.counts_table is not None:
        counts = sql.qualified(settings.schema, settings.counts_table)
        parameters = {"table_name": settings.table_name, "run_id": settings.run_id}
        cursor.execute(sql.delete_run_counts(counts), parameters)
    origin = {"run_id": settings.run_id, "staged_at": staging_tables.utc_now()}
    collector = RejectCollector(settings.max_rejects)
    rows = 0
    batches = [[key] for key in keys] if per_key else [list(keys)]
    for batch in batches:
        source_key = batch[0] if per_key else None
        manifest = manifest_key(settings.run_id, settings.table_name, source_key)
        _write_manifest(client, settings.bucket, manifest, batch)
        query_id, loaded = _copy(
            cursor, table, columns, f"s3://{settings.bucket}/{manifest}", settings
        )
        _collect_load_errors(cursor, query_id, settings, collector)
        refused = 0
        if rules is not None:
            refused = _refuse_rule_breakers(
                cursor, table, rules, columns, source_key or manifest, collector
            )
        if source_key is not None:
            cursor.execute(
                redshift_sql.set_source_key(table, per_run), {**origin, "source_key": source_key}
            )
            if settings.counts_table is not None and rules is not None and rules.plays:
                _count_plays(cursor, table, rules, rules.plays, source_key, settings, per_run)
        rows += loaded - refused
    return RedshiftLoad(rows=rows, copies=len(batches), rejects=collector.rejects)


def _write_manifest(client: Any, bucket: str, key: str, keys: Sequence[str]) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client.put_object(
            Bucket=bucket, Key=key, Body=manifest_body(bucket, keys), ContentType="application/json"
        )
    except (BotoCoreError, ClientError) as exc:
        raise ManifestError(
            f"cannot write the COPY manifest s3://{bucket}/{key}: {exc}. The AWS connection "
            f"needs s3:PutObject on s3://{bucket}/{MANIFEST_PREFIX}/*"
        ) from exc


def _copy(
    cursor: Any, table: str, columns: Sequence[str], manifest_url: str, settings: RedshiftStaging
) -> tuple[int, int]:
    """Run one COPY of a manifest; returns its query id and the rows it loaded."""
    statement = redshift_sql.redshift_copy(
        table=table,
        s3_url=manifest_url,
        credentials=settings.credentials,
        json_paths=settings.json_paths,
        region=settings.region,
        max_errors=settings.max_rejects,
        columns=columns,
        manifest=True,
    )
    log.info("Running: %s", statement.replace(settings.credentials, "<credentials>"))
    cursor.execute(statement)
    cursor.execute("SELECT pg_last_copy_id(), pg_last_copy_count()")
    query_id, copied = cursor.fetchone()
    return int(query_id), int(copied)


def _collect_load_errors(
    cursor: Any, query_id: int, settings: RedshiftStaging, collector: RejectCollector
) -> None:
    """Set aside the rows COPY ``query_id`` skipped, with file, line and reason."""
    cursor.execute(
        sql.read_sql(f"redshift_load_errors_{settings.errors_view}"),
        {"query_id": query_id, "limit": settings.max_rejects + 1},
    )
    prefix = f"s3://{settings.bucket}/"
    for file_name, line, column, code, message, raw_line in cursor.fetchall():
        key = (file_name or "").strip().removeprefix(prefix) or "(unknown object)"
        where = f"column {column.strip()}, " if column and column.strip() else ""
        reason = f"{(message or '').strip()} ({where}Redshift load error {code})"
        collector.add(key, line, RecordError(f"{key} line {line}", reason), raw_line)


def _refuse_rule_breakers(
    cursor: Any,
    table: str,
    rules: TableRules,
    columns: Sequence[str],
    source: str,
    collector: RejectCollector,
) -> int:
    """Move the just-copied rows breaking a staging rule to ``collector``; returns how many.

    The raw line of such a row is its values as JSON (the line itself is not kept).
    """
    predicates = staging_rules.violation_predicates(rules)
    reasons = [rule.reason for rule in staging_rules.rule_list(rules)]
    cursor.execute(
        redshift_sql.select_rule_violations(table, columns, predicates),
        {"limit": collector.max_rejects + 1},
    )
    broken = cursor.fetchall()
    for rule_number, *values in broken:
        raw = json.dumps(dict(zip(columns, values, strict=True)), ensure_ascii=False, default=str)
        collector.add(source, None, RecordError(source, reasons[rule_number]), raw)
    if broken:
        cursor.execute(redshift_sql.delete_rule_violations(table, predicates))
    return len(broken)


def _count_plays(
    cursor: Any,
    table: str,
    rules: TableRules,
    plays: PlayCount,
    source_key: str,
    settings: RedshiftStaging,
    per_run: bool,
) -> None:
    """Count one key's plays per UTC hour into the counts table (the run's counts were
    cleared before its first COPY), from its rows of this run."""
    counts = sql.qualified(settings.schema, settings.counts_table or "")
    parameters = {
        "table_name": settings.table_name,
        "source_key": source_key,
        "run_id": settings.run_id,
        "counted_at": datetime.now(UTC).replace(tzinfo=None),
    }
    statement = redshift_sql.count_plays(
        table,
        counts,
        plays.identity,
        plays.time_column,
        staging_rules.scope_predicate(rules),
        per_run=per_run,
    )
    cursor.execute(statement, parameters)
