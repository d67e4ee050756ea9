"""docker-compose.override.yml: the Docker path's warehouse, S3 API and seed; the connection rule.

The Astro CLI merges the override into the compose project it generates (services
``postgres``, ``scheduler``, ``webserver``, ``triggerer`` on the network ``airflow``; see
astro-cli ``airflow/include/airflow2/composeyml.go.tmpl``). No Docker engine here: these
tests check the file against that template's shape, against airflow_settings.yaml (hosts
= service names, ports = the ports the services listen on, the same as natively) and
run the seed's own code against an in-process moto.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest
import yaml

from dev.astro_cli import seed
from dev.local_stack import airflow_settings

ROOT = Path(__file__).resolve().parents[1]
OVERRIDE = yaml.safe_load((ROOT / "docker-compose.override.yml").read_text())
SERVICES = OVERRIDE["services"]
SETTINGS = airflow_settings.read_settings()
CONNECTIONS = {c["conn_id"]: c for c in SETTINGS["connections"]}
VARIABLES = {v["variable_name"]: v["variable_value"] for v in SETTINGS["variables"]}

# The CLI's generated project (template keys only; what a merge must agree with).
CLI_SERVICES = {"postgres", "scheduler", "webserver", "triggerer"}
CLI_NETWORKS = {"airflow"}
CLI_HOST_PORTS = {"5432", "8080"}
# Service keys of the compose spec this file may use (compose-go / docker compose v2).
ALLOWED_KEYS = {
    "image",
    "command",
    "entrypoint",
    "environment",
    "ports",
    "volumes",
    "healthcheck",
    "restart",
    "networks",
    "depends_on",
    "working_dir",
}


def extra(conn_id: str) -> dict:
    value = CONNECTIONS[conn_id].get("conn_extra") or {}
    return yaml.safe_load(value) if isinstance(value, str) else value


def listening_port(service: dict) -> int:
    """The port the service's own command listens on (``-p N``)."""
    command = service["command"]
    return int(command[command.index("-p") + 1])


def published(service: dict) -> list[tuple[str, str, str]]:
    return [tuple(str(p).split(":")) for p in service.get("ports", [])]


def test_three_side_cars_on_the_clis_network_and_nothing_of_the_clis_own():
    assert set(SERVICES) == {"sparkify-warehouse", "sparkify-s3", "sparkify-seed"}
    assert not CLI_SERVICES & set(SERVICES), "the Airflow services stay as the CLI makes them"
    for name, service in SERVICES.items():
        assert set(service) <= ALLOWED_KEYS, name
        assert service["networks"] == ["airflow"], name
        for target in service.get("depends_on", {}):
            assert target in SERVICES, f"{name} depends on {target}"
    assert set(OVERRIDE) <= {"services", "volumes"}
    named = {v.split(":")[0] for s in SERVICES.values() for v in s.get("volumes", [])}
    named = {v for v in named if not v.startswith(("./", "/", "$"))}
    assert named <= set(OVERRIDE.get("volumes") or {})


def test_published_ports_are_loopback_only_and_do_not_clash_with_the_cli():
    host_ports = []
    for name in ("sparkify-warehouse", "sparkify-s3"):
        [(address, host, container)] = published(SERVICES[name])
        assert address == "127.0.0.1" and host == container == str(listening_port(SERVICES[name]))
        host_ports.append(host)
    assert len(set(host_ports)) == 2 and not set(host_ports) & CLI_HOST_PORTS
    assert "ports" not in SERVICES["sparkify-seed"]


def test_warehouse_is_postgres_15_listening_on_8001_with_the_connections_credentials():
    service = SERVICES["sparkify-warehouse"]
    redshift = CONNECTIONS["redshift"]
    assert service["image"] == "postgres:15"
    assert listening_port(service) == int(redshift["conn_port"]) == 8001
    env = service["environment"]
    assert env["POSTGRES_USER"] == redshift["conn_login"]
    assert env["POSTGRES_PASSWORD"] == redshift["conn_password"]
    assert env["POSTGRES_DB"] == redshift["conn_schema"]
    assert env["PGPORT"] == "8001"
    check = service["healthcheck"]["test"]
    assert check[:2] == ["CMD", "pg_isready"] and check[check.index("-p") + 1] == "8001"
    [volume] = service["volumes"]
    assert volume == "sparkify_warehouse:/var/lib/postgresql/data"


def test_s3_is_moto_of_the_lock_on_8002():
    service = SERVICES["sparkify-s3"]
    locked = re.search(r"^moto==(\S+)$", (ROOT / "requirements.lock").read_text(), re.M)[1]
    assert service["image"] == f"motoserver/moto:{locked}"
    assert service["entrypoint"] == ["moto_server"]
    assert service["command"][:2] == ["-H", "0.0.0.0"]
    endpoint = urlsplit(extra("aws-redshift")["endpoint_url"])
    assert listening_port(service) == endpoint.port == 8002


def test_connection_hosts_are_the_service_names_and_map_to_loopback_natively():
    warehouse = CONNECTIONS["redshift"]
    s3 = extra("aws-redshift")
    hosts = {warehouse["conn_host"], urlsplit(s3["endpoint_url"]).hostname}
    assert hosts == {"sparkify-warehouse", "sparkify-s3"} == set(airflow_settings.LOCAL_HOSTS)
    assert hosts <= set(SERVICES)
    native = airflow_settings.native_entry(warehouse)
    assert (native["conn_host"], native["conn_port"]) == ("127.0.0.1", warehouse["conn_port"])
    native_s3 = airflow_settings.native_entry(CONNECTIONS["aws-redshift"])
    assert native_s3["conn_extra"]["endpoint_url"] == "http://127.0.0.1:8002"


def test_native_stack_listens_on_the_same_ports():
    from dev.local_stack import stack

    if os.environ.get("SPARKIFY_PG_PORT") or os.environ.get("SPARKIFY_S3_PORT"):
        pytest.skip("ports moved by SPARKIFY_PG_PORT / SPARKIFY_S3_PORT")
    assert (stack.PG_PORT, stack.S3_PORT) == (8001, 8002)


def test_seed_loads_the_bucket_of_the_variables_from_dev_only():
    service = SERVICES["sparkify-seed"]
    dockerfile_base = re.search(r"^FROM (\S+)", (ROOT / "Dockerfile").read_text(), re.M)[1]
    assert service["image"] == dockerfile_base  # pulled by the build already
    assert service["entrypoint"] == ["python", "-m", "dev.astro_cli.seed"]
    assert service["working_dir"] == "/usr/local/airflow"
    assert service["restart"] == "no"  # a string: YAML's bare no would be False
    assert service["depends_on"] == {"sparkify-s3": {"condition": "service_healthy"}}
    command = service["command"]
    option = {command[i]: command[i + 1] for i in range(0, len(command), 2)}
    assert option["--bucket"] == VARIABLES["sparkify_s3_bucket"] == "sparkify-local"
    assert VARIABLES["sparkify_reports_url"].startswith(f"s3://{option['--bucket']}/")
    assert option["--endpoint"] == extra("aws-redshift")["endpoint_url"]
    assert option["--data"] == "/data"
    mounts = {v.rsplit(":", 2)[1]: v for v in service["volumes"]}  # SOURCE:TARGET:ro
    assert mounts["/usr/local/airflow/dev"] == "./dev:/usr/local/airflow/dev:ro"
    data = mounts["/data"]
    assert data.startswith("${SPARKIFY_DATA:-./") and data.endswith(":/data:ro")
    default = ROOT / data.removeprefix("${SPARKIFY_DATA:-").split("}", 1)[0]
    assert default.is_dir() and not seed.has_sparkify_layout(default)


def test_seed_runs_with_dev_alone_on_its_path(tmp_path):
    # In the container only ./dev is mounted under the working directory: no include/,
    # no tests/, no project root on sys.path.
    (tmp_path / "dev").symlink_to(ROOT / "dev")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", "import dev.astro_cli.seed, dev.local_stack.seed_s3"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def moto_endpoint():
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def keys(endpoint: str, bucket: str) -> list[str]:
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="k",
        aws_secret_access_key="s",
    )
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", ()))


def test_seed_without_a_folder_uploads_the_sample(moto_endpoint, capsys):
    default = ROOT / "dev" / "astro_cli" / "no_data"
    args = ["--data", str(default), "--bucket", "seed-sample", "--endpoint", moto_endpoint]
    assert seed.main(args) == 0
    uploaded = keys(moto_endpoint, "seed-sample")
    assert len([k for k in uploaded if k.startswith("song_data/")]) == 300
    assert "log_data/2018/11/2018-11-01-events.json" in uploaded
    assert len([k for k in uploaded if k.startswith("log_data/")]) == 30
    assert "uploaded the sample" in capsys.readouterr().out


def test_seed_with_a_users_folder_uploads_exactly_it(moto_endpoint, tmp_path):
    (tmp_path / "log_data" / "2018" / "11").mkdir(parents=True)
    (tmp_path / "log_data" / "2018" / "11" / "2018-11-02-events.json").write_text("{}\n")
    (tmp_path / "song_data" / "A").mkdir(parents=True)
    (tmp_path / "song_data" / "A" / "TRA.json").write_text("{}\n")
    args = ["--data", str(tmp_path), "--bucket", "seed-own", "--endpoint", moto_endpoint]
    assert seed.main(args) == 0
    assert keys(moto_endpoint, "seed-own") == [
        "log_data/2018/11/2018-11-02-events.json",
        "song_data/A/TRA.json",
    ]


def test_seed_says_so_when_s3_never_answers():
    with pytest.raises(SystemExit, match="did not answer"):
        seed.wait_for(f"http://127.0.0.1:{free_port()}", timeout=0.5)
