"""Static checks of the docker-compose deployment (no Docker engine runs in the test environment)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-worker": "celery worker",
    "airflow-triggerer": "triggerer",
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yaml").read_text())


def test_has_every_service(compose: dict) -> None:
    assert set(compose["services"]) == {*AIRFLOW_SERVICES, "airflow-init", "postgres", "redis"}


@pytest.mark.parametrize("service, command", AIRFLOW_SERVICES.items())
def test_airflow_services_share_the_built_image_and_settings(
    compose: dict, service: str, command: str
) -> None:
    spec = compose["services"][service]
    assert spec["command"] == command
    assert spec["build"] == "."
    env = spec["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
    assert "healthcheck" in spec
    assert spec["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    assert spec["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert spec["depends_on"]["redis"]["condition"] == "service_healthy"


def test_code_and_data_are_mounted(compose: dict) -> None:
    mounts = dict(volume.split(":", 1) for volume in compose["services"]["airflow-worker"]["volumes"])
    for folder in ("dags", "plugins", "sql"):
        assert mounts[f"./{folder}"] == f"/opt/airflow/{folder}"
        assert (REPO / folder).is_dir()
    assert mounts["xero-data"] == "/opt/airflow/data"
    assert {"xero-data", "postgres-db"} <= set(compose["volumes"])


def test_warehouse_is_its_own_database(compose: dict) -> None:
    env = compose["services"]["airflow-worker"]["environment"]
    assert env["AIRFLOW_CONN_XERO_WAREHOUSE"].endswith("@postgres:5432/xero_warehouse")
    init_mount = compose["services"]["postgres"]["volumes"][1]
    source = init_mount.split(":", 1)[0]
    assert "CREATE DATABASE xero_warehouse" in (REPO / source).read_text()


def test_init_migrates_and_creates_the_warehouse_pool(compose: dict) -> None:
    script = "\n".join(compose["services"]["airflow-init"]["command"])
    assert "airflow db migrate" in script
    assert re.search(r"airflow pools set xero_warehouse \d+", script)


def test_dockerfile_installs_pinned_requirements_and_provider() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM apache/airflow:3\.\d+\.\d+-python3\.11$", dockerfile, re.M)
    assert "pip install --no-cache-dir -r /opt/airflow/requirements.txt" in dockerfile
    assert "COPY --chown=airflow:0 plugins" in dockerfile
    airflow_pin = re.search(r"^apache-airflow==(\S+)$", (REPO / "requirements.txt").read_text(), re.M)
    assert airflow_pin and airflow_pin.group(1) in dockerfile


def test_requirements_are_all_pinned() -> None:
    lines = [line for line in (REPO / "requirements.txt").read_text().splitlines() if line and line[0] != "#"]
    assert lines
    assert all("==" in line for line in lines), [line for line in lines if "==" not in line]


def test_xero_connection_is_valid_and_safe_across_workers(compose: dict) -> None:
    """The connection parses as the hook would read it, refreshes under a cross-host lock, and the tasks of a host
    share the rate-limit governor's state on the data volume."""
    import json

    from xero.hooks import parse_connection_config

    env = compose["services"]["airflow-worker"]["environment"]
    unset = re.sub(r"\$\{[A-Z_]+:-\}", "", env["AIRFLOW_CONN_XERO_DEFAULT"])  # an empty .env
    connection = json.loads(unset)
    extra = {**connection["extra"], "refresh_token": "from-the-consent-step", "tenant_ids": ""}
    config = parse_connection_config("xero_default", "client-id", "client-secret", extra)
    lock_conn = config.token_lock.removeprefix("postgres:")
    assert config.token_lock.startswith("postgres:") and f"AIRFLOW_CONN_{lock_conn.upper()}" in env
    assert env["XERO_GOVERNOR_DIR"].startswith("/opt/airflow/data/")
