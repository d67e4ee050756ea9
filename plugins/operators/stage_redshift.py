"""Stage Sparkify's JSON from S3 into a warehouse staging table: a ``File`` in, a ``Table`` out."""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from airflow.exceptions import AirflowException
from astro.sql import LoadFileOperator

from sparkify import aws_connection, manifest, sql, staging_rules, staging_tables
from sparkify.config import Dialect, warehouse_dialect
from sparkify.s3_objects import (
    MissingObjectsError,
    existing_keys,
    interval_keys,
    list_etags,
    parse_s3_url,
)
from sparkify.warehouse import transaction

if TYPE_CHECKING:
    from airflow.utils.context import Context
    from astro.files import File
    from astro.table import Table

MissingPolicy = Literal["fail", "skip"]


class StageToRedshiftOperator(LoadFileOperator):
    """Copy JSON objects from S3 into a staging table, replacing the run's part of it.

    An astro ``load_file`` task: a ``File`` in, the ``Table`` out (returned through XCom
    for the tasks that read it), with this project's load paths in place of astro's
    pandas round trip. The path follows the warehouse connection's type, read at run
    time: on Redshift native ``COPY ... MANIFEST FORMAT AS JSON`` statements of the exact
    keys run inside the cluster (``sparkify.redshift_copy``); on PostgreSQL the objects are
    fetched concurrently and streamed into one ``COPY ... FROM STDIN``
    (``sparkify.json_copy``). Either way the load is one transaction (a failed load
    leaves the previous contents). What it replaces depends on the table, so runs of
    different intervals can load at the same time: a table the DDL gives ``run_id`` and
    ``staged_at`` columns (``staging_events``) keeps each run's rows apart, and the load
    replaces only its run's (other runs' rows a day old are dropped first, see
    ``sparkify.staging_tables``); an ``incremental`` table (``staging_songs``) is one
    mirror of its prefix, and any other table is replaced whole, both under a table lock
    so runs write them in turn. On Redshift every table the load writes is locked first
    (no serializable-isolation aborts). The records the table's
    staging rules refuse (``sparkify.staging_rules``) and those of the wrong shape go to
    ``rejects_table`` with object, line and reason, and the events' plays are counted
    per object and UTC hour into ``counts_table``.

    :param input_file: astro ``File`` naming the S3 prefix (``s3://bucket/log_data/``) and,
        as its ``conn_id``, the AWS connection. Templated.
    :param output_table: astro ``Table`` to load (``name``, ``conn_id`` of the warehouse,
        ``metadata.schema``); it is also the task's outlet and its return value.
    :param key_template: strftime template of the daily files, e.g.
        ``log_data/%Y/%m/%Y-%m-%d-events.json``: only the days of the run's data interval
        are staged. ``None`` stages every ``.json`` object under the prefix.
    :param missing_keys: what to do when some daily file of the interval is absent:
        ``"fail"`` (default) or ``"skip"`` (log it and stage the others).
    :param max_workers: concurrent S3 GETs on the PostgreSQL path.
    :param json_paths: Redshift ``FORMAT AS JSON`` argument: ``'auto ignorecase'`` (the
        default, keys match columns case-insensitively) or an ``s3://`` jsonpaths file.
    :param region: Redshift ``REGION`` of the bucket (default: the AWS connection's).
    :param iam_role: Redshift path: the ARN of the IAM role the cluster assumes to read
        the bucket (``IAM_ROLE``); empty or ``None`` uses the AWS connection's keys
        (``CREDENTIALS``). Kept out of the warehouse connection's extra, which the hooks
        pass on to the database driver. Templated.
    :param max_rejects: bad records tolerated over the whole load before it fails
        (default 0). Each one (malformed JSON, a wrong type, a missing required field, a
        value too long in bytes of UTF-8, a NUL character, a broken staging rule) is set
        aside in ``rejects_table`` with its object, line, reason and raw text while the
        good rows load; one more than this fails the task naming the first offenders, and
        nothing of the load is kept. On Redshift it is also each COPY's ``MAXERROR``; the
        rows a COPY skipped are read back from ``STL_LOAD_ERRORS`` (provisioned) or
        ``SYS_LOAD_ERROR_DETAIL`` (Serverless: the warehouse connection's extra
        ``"redshift-serverless": true`` or its host says so), and a row a rule refuses
        after the COPY has no line number.
    :param rejects_table: table of set-aside records, in the schema of ``output_table``.
    :param counts_table: where the plays of each staged object are counted per UTC hour
        (tables whose rules count plays: ``staging_events``), in the same schema.
    :param incremental: whole prefix only, PostgreSQL path (on Redshift the prefix is
        copied in-cluster every run): read just the objects that are
        new or changed (by ETag) since the last successful load, drop the rows of changed
        and deleted ones, and keep the table a complete mirror of the prefix. Needs a
        ``source_key`` column in ``output_table``; the keys and ETags are kept in
        ``manifest_table``. The first load, or an empty manifest, loads everything.
    :param full_reload: with ``incremental``, ignore the manifest and reload every object
        (``True``/``False``, or a template rendering to ``"True"``/``"False"``). Templated.
    :param manifest_table: where incremental loads keep keys and ETags.
    """

    template_fields: Sequence[str] = (
        "input_file", "output_table", "key_template", "full_reload", "iam_role",
    )  # fmt: skip
    ui_color = "#358140"

    def __init__(
        self,
        *,
        input_file: File,
        output_table: Table,
        key_template: str | None = None,
        missing_keys: MissingPolicy = "fail",
        max_workers: int = 32,
        json_paths: str = "auto ignorecase",
        region: str | None = None,
        iam_role: str | None = None,
        max_rejects: int = 0,
        rejects_table: str = "staging_rejects",
        counts_table: str = "staging_counts",
        incremental: bool = False,
        full_reload: bool | str = False,
        manifest_table: str = "staging_manifest",
        **kwargs: Any,
    ) -> None:
        # Datasets are published by the quality checks, once the data has passed them;
        # no inlet either: the bucket is a Variable, the File's URI a template until run.
        kwargs.setdefault("outlets", [])
        kwargs.setdefault("inlets", [])
        super().__init__(input_file=input_file, output_table=output_table, **kwargs)
        if missing_keys not in ("fail", "skip"):
            raise ValueError(f"missing_keys must be 'fail' or 'skip', not {missing_keys!r}")
        self.input_file = input_file
        self.output_table = output_table
        self.key_template = key_template
        self.missing_keys = missing_keys
        self.max_workers = max_workers
        self.json_paths = json_paths
        self.region = region
        self.iam_role = iam_role
        if isinstance(max_rejects, bool) or not isinstance(max_rejects, int) or max_rejects < 0:
            raise ValueError(f"max_rejects must be a non-negative integer, not {max_rejects!r}")
        self.max_rejects = max_rejects
        self.rejects_table = rejects_table
        self.counts_table = counts_table
        if incremental and key_template is not None:
            raise ValueError("incremental staging reads a whole prefix: it takes no key_template")
        self.incremental = incremental
        self.full_reload = full_reload
        self.manifest_table = manifest_table

    # ------------------------------------------------------------------ planning

    @cached_property
    def dialect(self) -> Dialect:
        """The warehouse connection's dialect, read when the task runs."""
        return warehouse_dialect(self.output_table.conn_id)

    @property
    def incremental_run(self) -> bool:
        # Redshift copies the whole prefix in-cluster: there is nothing to skip.
        return self.incremental and self.dialect == "postgres"

    @property
    def schema(self) -> str:
        return self.output_table.metadata.schema or "public"

    def _s3_client(self) -> Any:
        return aws_connection.s3_client(self.input_file.conn_id, self.max_workers)

    def list_prefix(self, client: Any) -> dict[str, str]:
        """Key -> ETag of every ``.json`` object under the prefix; raises when there is none."""
        bucket, prefix = parse_s3_url(self.input_file.path)
        listed = list_etags(client, bucket, prefix)
        if not listed:
            raise MissingObjectsError(
                f"no .json objects under s3://{bucket}/{prefix}: nothing to stage"
            )
        return listed

    def plan_keys(self, client: Any, context: Context) -> list[str]:
        """The object keys this run stages; raises when there is nothing to stage."""
        bucket, _ = parse_s3_url(self.input_file.path)
        if self.key_template is None:
            return sorted(self.list_prefix(client))
        start, end = context["data_interval_start"], context["data_interval_end"]
        wanted = interval_keys(self.key_template, start, end)
        keys, missing = existing_keys(client, bucket, wanted)
        if missing:
            listed = ", ".join(f"s3://{bucket}/{k}" for k in missing)
            message = f"data interval {start} to {end}: missing log file(s) {listed}"
            if self.missing_keys == "fail":
                raise MissingObjectsError(
                    message + " (set missing_keys='skip' to stage the days that exist)"
                )
            self.log.warning("%s; skipped as configured", message)
        return keys

    # ------------------------------------------------------------------ loading

    def execute(self, context: Context) -> Table:
        from botocore.exceptions import BotoCoreError, ClientError

        self.log.info("Warehouse %r speaks %s", self.output_table.conn_id, self.dialect)
        client = self._s3_client()
        bucket, _ = parse_s3_url(self.input_file.path)
        try:
            listed = self.list_prefix(client) if self.incremental_run else None
            keys = sorted(listed) if listed is not None else self.plan_keys(client, context)
        except (BotoCoreError, ClientError) as exc:
            endpoint = client.meta.endpoint_url
            raise AirflowException(
                f"cannot list s3://{bucket} through connection {self.input_file.conn_id!r} "
                f"(endpoint {endpoint}), after retries: {exc}. Check the connection's "
                "credentials and endpoint_url in airflow_settings.yaml, and that S3 is reachable."
            ) from exc
        table = sql.qualified(self.schema, self.output_table.name)
        run_id = context["run_id"]
        partitioned = self.run_partitioned
        started = time.monotonic()
        if listed is not None and self._mirror_is_current(listed):
            return self.output_table
        if partitioned and self.dialect == "postgres":
            # Its own short transaction: in the load's, runs clearing the same old rows
            # would wait for each other's whole COPY.
            with transaction(self.output_table.conn_id) as cursor:
                self._declared_columns(cursor)
                staging_tables.forget_stale_runs(cursor, table, run_id)
        with transaction(self.output_table.conn_id) as cursor:
            locked = self._written_tables(partitioned)
            if locked:
                cursor.execute(sql.lock_tables(locked, self.dialect))
            columns = self._declared_columns(cursor)
            if listed is not None:
                keys, forgotten = self._forget_stale_objects(cursor, table, listed)
            elif partitioned:
                if self.dialect == "redshift":  # under the lock: no second transaction
                    staging_tables.forget_stale_runs(cursor, table, run_id)
                staging_tables.forget_run(cursor, table, run_id)
            else:
                cursor.execute(sql.clear_table(table, self.dialect))
            if not keys:
                rows = 0
            elif self.dialect == "redshift":
                rows = self._copy_on_redshift(cursor, table, client, bucket, keys, run_id)
            else:
                rows = self._copy_on_postgres(cursor, table, columns, client, bucket, keys, run_id)
            if listed is not None:
                manifest.record(
                    cursor, sql.qualified(self.schema, self.manifest_table),
                    self.output_table.name, {key: listed[key] for key in keys}, forget=forgotten,
                )  # fmt: skip
        self.log.info(
            "Staged %s rows from %s object(s) of s3://%s into %s%s in %.1f s",
            rows, len(keys), bucket, table, f" for run {run_id}" if partitioned else "",
            time.monotonic() - started,
        )  # fmt: skip
        return self.output_table

    @property
    def run_partitioned(self) -> bool:
        """Whether the load replaces only its run's rows (``staging_tables.declares_runs``);
        an incremental table is one mirror of its prefix."""
        return not self.incremental and staging_tables.declares_runs(self.output_table.name)

    def _declared_columns(self, cursor: Any) -> list:
        """The table's columns, once those the DDL declares and it lacks are added."""
        name = self.output_table.name
        columns = staging_tables.table_columns(cursor, self.schema, name)
        return staging_tables.ensure_declared_columns(
            cursor, self.schema, name, columns, self.dialect
        )

    def _written_tables(self, partitioned: bool) -> list[str]:
        """The tables the load locks first, so concurrent runs write them one at a time.

        None for a run-partitioned load on PostgreSQL: its rows (staged, rejects, counts)
        are the run's own. Redshift locks whatever the load writes, which also avoids its
        serializable-isolation aborts; a table shared by every run (an incremental mirror,
        its manifest, a table replaced whole) is locked on both targets.
        """
        if partitioned and self.dialect == "postgres":
            return []
        names = [self.output_table.name]
        if self.incremental_run:
            names.append(self.manifest_table)
        if self.dialect == "redshift":
            names.append(self.rejects_table)
            rules = staging_rules.rules_for(self.output_table.name)
            if rules is not None and rules.plays is not None:
                names.append(self.counts_table)
        return [sql.qualified(self.schema, name) for name in names]

    # ------------------------------------------------------------------ incremental

    def _full_reload_requested(self) -> bool:
        value = self.full_reload
        if isinstance(value, str):
            if value.strip().lower() not in ("true", "false"):
                raise ValueError(f"full_reload must render to True or False, not {value!r}")
            return value.strip().lower() == "true"
        return bool(value)

    def _mirror_is_current(self, listed: dict[str, str]) -> bool:
        """Whether the manifest already holds exactly ``listed``: then there is nothing to
        stage, and the load need not wait for the lock that other runs' loads hold (it
        looks again under the lock otherwise, where a run just ahead may have staged all)."""
        if self._full_reload_requested():
            return False
        manifest_table = sql.qualified(self.schema, self.manifest_table)
        with transaction(self.output_table.conn_id) as cursor:
            known = manifest.read(cursor, manifest_table, self.output_table.name)
        if not known or manifest.diff(listed, known).stale:
            return False
        self.log.info(
            "%s already mirrors the %s object(s) listed (by ETag): nothing to stage",
            self.output_table.name, len(listed),
        )  # fmt: skip
        return True

    def _forget_stale_objects(
        self, cursor: Any, table: str, listed: dict[str, str]
    ) -> tuple[list[str], list[str] | None]:
        """Drop rows of changed and deleted objects.

        Returns the keys to (re)load and the manifest keys to forget (``None``: all).
        """
        plan = manifest.forget_stale(
            cursor, table, sql.qualified(self.schema, self.manifest_table),
            self.output_table.name, listed, full_reload=self._full_reload_requested(),
            clear=sql.clear_table(table, self.dialect),
        )  # fmt: skip
        if plan is None:
            self.log.info("Full load of %s objects (no manifest, or full_reload)", len(listed))
            return sorted(listed), None
        self.log.info(
            "Incremental load: %s new or changed, %s removed, %s unchanged object(s)",
            len(plan.changed), len(plan.removed), plan.unchanged,
        )  # fmt: skip
        return plan.changed, plan.stale

    # ------------------------------------------------------------------ copying

    def _copy_on_postgres(
        self,
        cursor: Any,
        table: str,
        columns: list,
        client: Any,
        bucket: str,
        keys: list[str],
        run_id: str,
    ) -> int:
        from sparkify import postgres_staging
        from sparkify.staging_rejects import StagingError

        settings = postgres_staging.PostgresStaging(
            schema=self.schema,
            table_name=self.output_table.name,
            bucket=bucket,
            run_id=run_id,
            max_workers=self.max_workers,
            max_rejects=self.max_rejects,
            counts_table=self.counts_table,
        )
        try:
            load = postgres_staging.stage(cursor, client, settings, columns, keys)
        except StagingError as exc:
            raise AirflowException(
                f"staging s3://{bucket}/ into {table} failed, nothing was loaded: {exc}"
            ) from exc
        self._record_rejects(cursor, run_id, load.rejects)
        return load.rows

    def _record_rejects(self, cursor: Any, run_id: str, rejects: list) -> None:
        """Replace this run's rejects for this table (a re-run does not pile them up)."""
        from sparkify import staging_rejects

        rejects_table = sql.qualified(self.schema, self.rejects_table)
        staging_rejects.record(cursor, rejects_table, run_id, self.output_table.name, rejects)
        if not rejects:
            return
        first = rejects[0]
        line = "" if first.line_number is None else f" line {first.line_number}"
        self.log.warning(
            "Set aside %s bad record(s) in %s, first: %s%s: %s",
            len(rejects), self.rejects_table, first.source_key, line, first.reason,
        )  # fmt: skip

    def _copy_on_redshift(
        self, cursor: Any, table: str, client: Any, bucket: str, keys: list[str], run_id: str
    ) -> int:
        from airflow.hooks.base import BaseHook

        from sparkify import redshift_copy
        from sparkify.staging_rejects import TooManyRejectsError

        warehouse = BaseHook.get_connection(self.output_table.conn_id)
        settings = redshift_copy.RedshiftStaging(
            schema=self.schema,
            table_name=self.output_table.name,
            bucket=bucket,
            credentials=aws_connection.copy_credentials(self.input_file.conn_id, self.iam_role),
            run_id=run_id,
            json_paths=self.json_paths,
            region=self.region or aws_connection.region(self.input_file.conn_id),
            max_rejects=self.max_rejects,
            errors_view=redshift_copy.load_errors_view(warehouse.host, warehouse.extra_dejson),
            counts_table=self.counts_table,
        )
        try:
            load = redshift_copy.stage(cursor, client, settings, keys)
        except TooManyRejectsError as exc:
            raise AirflowException(
                f"staging s3://{bucket}/ into {table} failed, nothing was loaded: {exc}"
            ) from exc
        self._record_rejects(cursor, run_id, load.rejects)
        return load.rows
