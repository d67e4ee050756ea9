"""Unit tests for sparkify.redshift_sql: Redshift's COPY and its credentials."""

from __future__ import annotations

import pytest

from sparkify.redshift_sql import redshift_access_keys, redshift_copy, redshift_iam_role

ROLE = "arn:aws:iam::123456789012:role/dwhRole"
TABLE = '"public"."staging_events"'

# ----------------------------------------------------------------------------- Redshift COPY


def test_redshift_copy_renders_the_whole_statement():
    rendered = redshift_copy(
        table=TABLE,
        s3_url="s3://udacity-dend/log_data/2018/11/2018-11-05-events.json",
        credentials=redshift_iam_role(ROLE),
        region="us-west-2",
    )
    assert rendered == (
        'COPY "public"."staging_events"\n'
        "FROM 's3://udacity-dend/log_data/2018/11/2018-11-05-events.json'\n"
        "IAM_ROLE 'arn:aws:iam::123456789012:role/dwhRole'\n"
        "FORMAT AS JSON 'auto ignorecase'\n"
        "REGION 'us-west-2'\n"
        "TIMEFORMAT 'epochmillisecs'\n"
        "MAXERROR 0\n"
        "COMPUPDATE OFF STATUPDATE OFF"
    )


def test_redshift_copy_without_region_with_jsonpaths_and_max_errors():
    rendered = redshift_copy(
        table='"public"."staging_songs"',
        s3_url="s3://udacity-dend/song_data/",
        credentials="CREDENTIALS 'aws_access_key_id=AK;aws_secret_access_key=SK'",
        json_paths="s3://udacity-dend/log_json_path.json",
        max_errors=5,
    )
    assert rendered == (
        'COPY "public"."staging_songs"\n'
        "FROM 's3://udacity-dend/song_data/'\n"
        "CREDENTIALS 'aws_access_key_id=AK;aws_secret_access_key=SK'\n"
        "FORMAT AS JSON 's3://udacity-dend/log_json_path.json'\n"
        "TIMEFORMAT 'epochmillisecs'\n"
        "MAXERROR 5\n"
        "COMPUPDATE OFF STATUPDATE OFF"
    )


def test_redshift_copy_plain_auto():
    rendered = redshift_copy(table=TABLE, s3_url="s3://b-1/k", credentials="C", json_paths="auto")
    assert "\nFORMAT AS JSON 'auto'\n" in rendered


def test_redshift_iam_role_rendering():
    assert redshift_iam_role(ROLE) == f"IAM_ROLE '{ROLE}'"
    assert redshift_iam_role("arn:aws-us-gov:iam::123456789012:role/path/to/etl-role") == (
        "IAM_ROLE 'arn:aws-us-gov:iam::123456789012:role/path/to/etl-role'"
    )


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::123456789012:role/dwh'Role",
        "arn:aws:iam::123456789012:role/x' CREDENTIALS 'y",
        "arn:aws:iam::12345:role/dwhRole",  # account id is 12 digits
        "arn:aws:iam::123456789012:user/dwhRole",
        "arn:aws:s3:::bucket",
        "dwhRole",
        "",
        f"{ROLE}\n",
    ],
)
def test_redshift_iam_role_refuses_bad_arns(arn):
    with pytest.raises(ValueError, match="IAM role ARN"):
        redshift_iam_role(arn)


def test_redshift_access_keys_rendering():
    assert redshift_access_keys("AKIAEXAMPLE", "s3cr3t/Key+") == (
        "CREDENTIALS 'aws_access_key_id=AKIAEXAMPLE;aws_secret_access_key=s3cr3t/Key+'"
    )
    assert redshift_access_keys("AK", "SK", "TOKEN") == (
        "CREDENTIALS 'aws_access_key_id=AK;aws_secret_access_key=SK;token=TOKEN'"
    )


@pytest.mark.parametrize(
    ("access", "secret", "token"),
    [
        ("AK", "se'cret", None),
        ("AK'", "secret", None),
        ("AK", "secret", "to'ken"),
        ("AK", "sec\\ret", None),
        ("AK", "sec\nret", None),
    ],
)
def test_redshift_access_keys_refuse_quotes_backslashes_and_control_characters(
    access, secret, token
):
    with pytest.raises(ValueError, match="AWS credentials must be printable text"):
        redshift_access_keys(access, secret, token)


@pytest.mark.parametrize(
    "s3_url",
    ["s3://bucket/it's.json", "s3://bucket/a\\b", "s3://bucket/a\nMAXERROR 100000"],
)
def test_redshift_copy_refuses_unsafe_urls(s3_url):
    with pytest.raises(ValueError, match="s3_url must be printable text"):
        redshift_copy(table=TABLE, s3_url=s3_url, credentials="C")


@pytest.mark.parametrize(
    "json_paths", ["auto'", "ignorecase", "", "https://bucket/paths.json", "s3://b/it's.json"]
)
def test_redshift_copy_refuses_bad_json_paths(json_paths):
    with pytest.raises(ValueError, match="json_paths"):
        redshift_copy(table=TABLE, s3_url="s3://b-1/k", credentials="C", json_paths=json_paths)


@pytest.mark.parametrize("region", ["us_west_2", "US-WEST-2", "us-west", "us-west-2'", "west-2"])
def test_redshift_copy_refuses_bad_regions(region):
    with pytest.raises(ValueError, match="not an AWS region name"):
        redshift_copy(table=TABLE, s3_url="s3://b-1/k", credentials="C", region=region)


@pytest.mark.parametrize("region", ["us-east-1", "eu-central-1", "us-gov-west-1", "ap-southeast-2"])
def test_redshift_copy_accepts_real_regions(region):
    rendered = redshift_copy(table=TABLE, s3_url="s3://b-1/k", credentials="C", region=region)
    assert f"\nREGION '{region}'\n" in rendered


@pytest.mark.parametrize("max_errors", [-1, 1.5, "0", None])
def test_redshift_copy_refuses_bad_max_errors(max_errors):
    with pytest.raises(ValueError, match="max_errors must be a non-negative integer"):
        redshift_copy(table=TABLE, s3_url="s3://b-1/k", credentials="C", max_errors=max_errors)
