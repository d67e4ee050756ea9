"""StageToRedshiftOperator's PostgreSQL path against the real S3 API and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg2
import pytest
from airflow.exceptions import AirflowException
from astro.files import File
from astro.table import Metadata, Table

from dev.sample_data import SampleSpec, generate
from operators.stage_redshift import StageToRedshiftOperator
from sparkify.s3_objects import MissingObjectsError
from tests.fakes import apply_environment
from tests.stack_support import (
    connect,
    connection_environment,
    count_rows,
    fresh_bucket,
    fresh_database,
    table_rows,
    upload_folder,
)

pytestmark = pytest.mark.stack

DB, BUCKET = "sparkify_test_stage", "sparkify-test-stage"
DAY1 = datetime(2018, 11, 1, tzinfo=UTC)
KEY_TEMPLATE = "log_data/%Y/%m/%Y-%m-%d-events.json"


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("stage-sample")
    generate(folder, SampleSpec(start=DAY1.date(), days=2, songs=150, seed=5))
    return folder


@pytest.fixture(scope="module")
def s3(sample):
    client = fresh_bucket(BUCKET)
    upload_folder(client, BUCKET, sample)
    return client


@pytest.fixture
def warehouse(monkeypatch) -> str:
    fresh_database(DB)
    apply_environment(monkeypatch, connection_environment(DB, BUCKET))
    return DB


def operator(prefix: str, table: str, **kwargs) -> StageToRedshiftOperator:
    return StageToRedshiftOperator(
        task_id=f"stage_{table}",
        input_file=File(f"s3://{BUCKET}/{prefix}", conn_id="aws-redshift"),
        output_table=Table(name=table, conn_id="redshift", metadata=Metadata(schema="public")),
        **kwargs,
    )


def run(op: StageToRedshiftOperator, start: datetime = DAY1, hours: int = 24, run_id: str = "test"):
    end = start + timedelta(hours=hours)
    return op.execute({"data_interval_start": start, "data_interval_end": end, "run_id": run_id})


def rows_per_run() -> dict[str | None, int]:
    with connect(DB) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT run_id, COUNT(*) FROM staging_events GROUP BY run_id")
        return dict(cursor.fetchall())


def lines(path: Path) -> list[dict]:
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


def test_stages_the_day_of_the_interval_exactly(sample, s3, warehouse):
    day_file = sample / DAY1.strftime(KEY_TEMPLATE)
    expected = lines(day_file)
    op = operator("log_data/", "staging_events", key_template=KEY_TEMPLATE)
    result = run(op)
    assert result is op.output_table  # the astro Table, for the tasks downstream
    assert result.name == "staging_events"
    rows = table_rows(DB, "staging_events", ["ts", "sessionid", "iteminsession"])
    assert len(rows) == len(expected)
    staged = sorted((r[15], r[12], r[1], r[17]) for r in rows)  # ts, sessionid, auth, userid
    assert staged == sorted((e["ts"], e["sessionId"], e["auth"], e["userId"]) for e in expected)
    user_agents = {r[16] for r in rows if r[16]}
    assert all(agent.startswith('"') for agent in user_agents)  # staged as delivered
    # each row names its object and the run that staged it, at one moment
    assert {(r[18], r[19]) for r in rows} == {(DAY1.strftime(KEY_TEMPLATE), "test")}
    assert len({r[20] for r in rows}) == 1 and isinstance(rows[0][20], datetime)


def test_runs_of_two_intervals_stage_at_once_each_keeping_its_rows(sample, s3, warehouse):
    """Two runs at once (no lock between them on PostgreSQL), then a re-run of one: each
    run's rows are its own; a re-run replaces only them; a day-old run's rows go."""
    import threading

    from airflow.models.baseoperator import ExecutorSafeguard

    day2 = DAY1 + timedelta(days=1)
    sizes = {day: len(lines(sample / day.strftime(KEY_TEMPLATE))) for day in (DAY1, day2)}
    errors: list[BaseException] = []

    def stage(start: datetime, run_id: str) -> None:
        try:
            ExecutorSafeguard._sentinel.callers = {}  # set up in the main thread only
            run(operator("log_data/", "staging_events", key_template=KEY_TEMPLATE),
                start, 24, run_id)  # fmt: skip
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=stage, args=(DAY1, "run_day1")),
        threading.Thread(target=stage, args=(day2, "run_day2")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert rows_per_run() == {"run_day1": sizes[DAY1], "run_day2": sizes[day2]}

    # run_day1 again (a retry): its rows replaced, not added; run_day2's as they were
    run(operator("log_data/", "staging_events", key_template=KEY_TEMPLATE), DAY1, 24, "run_day1")
    assert rows_per_run() == {"run_day1": sizes[DAY1], "run_day2": sizes[day2]}

    # run_day2 staged a day ago: the next run's load drops its rows
    with connect(DB) as conn, conn.cursor() as cursor:
        cursor.execute(
            "UPDATE staging_events SET staged_at = staged_at - INTERVAL '25 hours' "
            "WHERE run_id = 'run_day2'"
        )
        conn.commit()
    run(operator("log_data/", "staging_events", key_template=KEY_TEMPLATE), DAY1, 24, "run_3")
    assert rows_per_run() == {"run_day1": sizes[DAY1], "run_3": sizes[DAY1]}


def test_hourly_interval_stages_the_day_file_holding_the_hour(sample, s3, warehouse):
    run(
        operator("log_data/", "staging_events", key_template=KEY_TEMPLATE),
        DAY1 + timedelta(hours=13),
        1,
    )
    assert count_rows(DB, "staging_events") == len(lines(sample / DAY1.strftime(KEY_TEMPLATE)))


def test_songs_prefix_stages_every_file(sample, s3, warehouse):
    run(operator("song_data/", "staging_songs"))
    songs = [lines(p)[0] for p in (sample / "song_data").rglob("*.json")]
    rows = table_rows(DB, "staging_songs", ["song_id"])
    assert [r[6] for r in rows] == sorted(s["song_id"] for s in songs)
    by_id = {s["song_id"]: s for s in songs}
    for row in rows:
        assert row[8] == by_id[row[6]]["duration"]  # floats survive exactly
        assert row[7] == by_id[row[6]]["title"]  # non-ASCII, quotes, ampersands intact


def test_missing_day_fails_naming_the_file(s3, warehouse):
    later = datetime(2018, 11, 2, 12, tzinfo=UTC)  # 2018-11-02 exists, 2018-11-03 does not
    with pytest.raises(
        MissingObjectsError,
        match=r"s3://sparkify-test-stage/log_data/2018/11/2018-11-03-events\.json",
    ):
        run(operator("log_data/", "staging_events", key_template=KEY_TEMPLATE), later, 24)


def test_missing_day_skipped_when_configured(sample, s3, warehouse):
    later = datetime(2018, 11, 2, 12, tzinfo=UTC)
    run(
        operator("log_data/", "staging_events", key_template=KEY_TEMPLATE, missing_keys="skip"),
        later,
        24,
    )
    assert count_rows(DB, "staging_events") == len(
        lines(sample / "log_data/2018/11/2018-11-02-events.json")
    )


def test_empty_prefix_fails_clearly(s3, warehouse):
    with pytest.raises(
        MissingObjectsError, match=r"no \.json objects under s3://sparkify-test-stage/nothing/"
    ):
        run(operator("nothing/", "staging_songs"))


def test_malformed_line_names_file_and_line_and_keeps_the_table(sample, s3, warehouse):
    run(operator("song_data/", "staging_songs"))
    before = count_rows(DB, "staging_songs")
    broken = "song_data/Z/Z/Z/TRZZZBROKEN.json"
    s3.put_object(Bucket=BUCKET, Key=broken, Body=b'{"song_id": "SOX", "title": ')
    try:
        with pytest.raises(
            AirflowException,
            match=rf"nothing was loaded: .*{broken} line 1: malformed JSON".replace(
                ".json", r"\.json"
            ),
        ):
            run(operator("song_data/", "staging_songs"))
    finally:
        s3.delete_object(Bucket=BUCKET, Key=broken)
    assert count_rows(DB, "staging_songs") == before


def test_wrong_password_names_the_connection(s3, warehouse, monkeypatch):
    env = connection_environment(DB, BUCKET)
    document = json.loads(env["AIRFLOW_CONN_REDSHIFT"])
    monkeypatch.setenv("AIRFLOW_CONN_REDSHIFT", json.dumps({**document, "password": "wrong"}))
    with pytest.raises(
        Exception,
        match=r"connection 'redshift' \(sparkify@127\.0\.0\.1:8001/"
        r"sparkify_test_stage\).*password",
    ):
        run(operator("song_data/", "staging_songs"))


def redshift_connection(monkeypatch, extra: dict | None = None) -> None:
    """The warehouse connection retyped ``redshift``, still aimed at the local PostgreSQL."""
    document = json.loads(connection_environment(DB, BUCKET)["AIRFLOW_CONN_REDSHIFT"])
    document = {**document, "conn_type": "redshift"}
    if extra is not None:
        document["extra"] = extra
    monkeypatch.setenv("AIRFLOW_CONN_REDSHIFT", json.dumps(document))


def test_a_redshift_connection_takes_the_redshift_copy_path(s3, warehouse, monkeypatch):
    run(operator("song_data/", "staging_songs"))
    before = table_rows(DB, "staging_songs", ["song_id"])
    redshift_connection(monkeypatch)
    # The same server taken for Redshift: the in-cluster COPY ... FROM 's3://...' with the
    # S3 connection's keys is sent, which PostgreSQL refuses; the DELETE before it is
    # rolled back with it.
    with pytest.raises(psycopg2.errors.SyntaxError, match='at or near "CREDENTIALS"'):
        run(operator("song_data/", "staging_songs"))
    assert table_rows(DB, "staging_songs", ["song_id"]) == before


def test_the_iam_role_is_a_task_argument_not_a_connection_extra(s3, warehouse, monkeypatch):
    """The role travels as IAM_ROLE in the COPY; the warehouse connection opens as it is."""
    run(operator("song_data/", "staging_songs"))
    before = table_rows(DB, "staging_songs", ["song_id"])
    redshift_connection(monkeypatch)
    role = "arn:aws:iam::123456789012:role/sparkifyTest"
    with pytest.raises(psycopg2.errors.SyntaxError, match='at or near "IAM_ROLE"'):
        run(operator("song_data/", "staging_songs", iam_role=role))
    assert table_rows(DB, "staging_songs", ["song_id"]) == before


def event(ts: int, **fields) -> dict:
    base = {
        "artist": "Beyoncé", "auth": "Logged In", "firstName": "Zoë", "gender": "F",
        "itemInSession": 0, "lastName": "O'Hara", "length": 201.5, "level": "free",
        "location": "Ĺódź, PL", "method": "PUT", "page": "NextSong",
        "registration": 1540000000000.0, "sessionId": 7, "song": 'Say "Yes" & go; now',
        "status": 200, "ts": ts, "userAgent": '"Mozilla/5.0"', "userId": "42",
    }  # fmt: skip
    return {**base, **fields}


def test_bad_records_are_set_aside_and_good_rows_load(s3, warehouse):
    good = [event(1541030400000 + n, itemInSession=n) for n in range(3)]
    mixed_lines = [
        json.dumps(event(1541030500000, itemInSession=10), ensure_ascii=False),  # 1 good
        '{"artist": "x", "ts": ',  # 2 malformed
        json.dumps(event("soon", itemInSession=11)),  # 3 non-numeric ts
        json.dumps({k: v for k, v in event(0).items() if k != "ts"}),  # 4 no ts
        json.dumps(event(1541030600000, userAgent="A" * 1_000_000)),  # 5 a 1 MB line
        "",  # 6 blank: skipped
        json.dumps(event(1541030700000, itemInSession=12)),  # 7 good
        '{"artist": "cut off", "auth": "Logged',  # 8 truncated last line
    ]
    objects = {
        "bad/good.json": "\n".join(json.dumps(e) for e in good) + "\n",
        "bad/mixed.json": "\n".join(mixed_lines),
        "bad/empty.json": "",
    }
    try:
        for key, body in objects.items():
            s3.put_object(Bucket=BUCKET, Key=key, Body=body.encode())
        op = operator("bad/", "staging_events", max_rejects=10)
        context = {
            "data_interval_start": DAY1, "data_interval_end": DAY1 + timedelta(days=1),
            "run_id": "manual__bad_input",
        }  # fmt: skip
        op.execute(context)
        op.execute(context)  # a re-run replaces its rejects, it does not pile them up
    finally:
        s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in objects]})

    staged = table_rows(DB, "staging_events", ["ts"])
    assert [row[15] for row in staged] == [*(e["ts"] for e in good), 1541030500000, 1541030700000]
    assert staged[-1][2] == "Zoë" and staged[-1][13] == 'Say "Yes" & go; now'
    rejects = table_rows(DB, "staging_rejects", ["source_key", "line_number"])
    assert [(r[0], r[1], r[2], r[3]) for r in rejects] == [
        ("manual__bad_input", "staging_events", "bad/mixed.json", n) for n in (2, 3, 4, 5, 8)
    ]
    reasons = [r[4] for r in rejects]
    assert reasons[0].startswith("malformed JSON")
    assert reasons[1] == "ts must be an integer, got 'soon'"
    assert reasons[2] == "required field 'ts' is missing or null"
    assert reasons[3].startswith(
        "useragent is 1,000,000 bytes of UTF-8, longer than the column's 1,024"
    )
    assert reasons[4].startswith("malformed JSON")
    assert rejects[0][5] == '{"artist": "x", "ts": '
    assert len(rejects[3][5]) == 65535  # the 1 MB line is kept, cut at 65,535 characters


def test_more_bad_records_than_tolerated_fails_naming_them(s3, warehouse):
    s3.put_object(Bucket=BUCKET, Key="worse/a.json", Body=b'{"ts": 1}\nnot json\n{"ts": "x"}\n')
    try:
        with pytest.raises(
            AirflowException,
            match=r"more than 1 bad record\(s\) \(max_rejects\); first: worse/a\.json line 2: "
            r"malformed JSON .*; worse/a\.json line 3: ts must be an integer, got 'x'",
        ):
            op = operator("worse/", "staging_events", max_rejects=1)
            op.execute({"data_interval_start": DAY1, "data_interval_end": DAY1 + timedelta(days=1),
                        "run_id": "manual__worse"})  # fmt: skip
    finally:
        s3.delete_object(Bucket=BUCKET, Key="worse/a.json")
    assert count_rows(DB, "staging_events") == 0
    assert count_rows(DB, "staging_rejects") == 0  # the failed load left nothing behind
