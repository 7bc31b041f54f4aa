"""Airflow's own metadata database on PostgreSQL with the LocalExecutor, as the compose deployment runs it.

``airflow db migrate`` builds the metadata schema in a fresh database, and the sync DAG runs through the
LocalExecutor (tasks in separate worker processes) loading the Postgres warehouse.
"""

from __future__ import annotations

import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.local_airflow import LocalAirflow
from scripts.readiness import ServiceNotReady, wait_until_up
from tests.e2e.support import CLIENT_ID, CLIENT_SECRET, dag_env
from xero.entities import ENTITIES
from xero_sandbox import Sandbox, SandboxConfig

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


@pytest.fixture
def metadata_db(postgres_url: str) -> Iterator[str]:
    """Create an empty database for Airflow's metadata and return its SQLAlchemy URL."""
    import psycopg

    name = f"airflow_meta_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    server = postgres_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg2://", 1)
    yield f"{server}/{name}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    try:
        wait_until_up(url, what="the Airflow API server", timeout=180, process=process)
    except ServiceNotReady as exc:
        pytest.fail(f"{exc}:\n{log.read_text()[-3000:]}")


def test_sync_with_postgres_metadata_and_local_executor(
    tmp_path: Path, postgres_url: str, pg_schema: str, metadata_db: str
) -> None:
    sb = Sandbox(
        SandboxConfig(seed=5, tenants=2, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, invoices=300)
    )
    with sb.serve():
        env = dag_env(sb, tmp_path, postgres_url, pg_schema)
        port = _free_port()
        env.update(
            {
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_db,
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "4",
                "XERO_WAREHOUSE_POOL": "xero_warehouse",
            }
        )
        airflow = LocalAirflow(tmp_path / "airflow", env=env)
        airflow.prepare(pool_slots=4)
        check = airflow.run("db", "check")
        assert check.returncode == 0, check.stdout + check.stderr
        log = tmp_path / "api-server.log"
        with log.open("w") as out:
            server = subprocess.Popen(
                [*airflow.command("api-server", "--port", str(port))],
                env=airflow.environ(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_until_up(f"http://127.0.0.1:{port}/api/v2/monitor/health", server, log)
            result = airflow.run("dags", "test", "--use-executor", "xero_sync")
        finally:
            server.terminate()
            server.wait(timeout=30)
        assert result.returncode == 0, f"{result.stdout[-6000:]}\n{result.stderr[-3000:]}"

    import psycopg

    with psycopg.connect(postgres_url) as conn:
        invoices = conn.execute(
            f'select tenant_id, count(*) from "{pg_schema}".invoice group by 1'
        ).fetchall()
        states = conn.execute(
            f'select count(*) from "{pg_schema}"._sync_state where watermark is not null'
        ).fetchone()
    assert dict(invoices) == {t.tenant_id: sb.count(t.tenant_id, "invoices") for t in sb.tenants}
    assert states == (
        len(sb.tenants) * sum(e.modified_since for e in ENTITIES.values()),
    )  # not the organisation
    with psycopg.connect(metadata_db.replace("+psycopg2", "")) as conn:
        ran = conn.execute(
            "select state, count(*) from task_instance where dag_id = 'xero_sync' group by state"
        ).fetchall()
    targets = len(sb.tenants) * len(
        ENTITIES
    )  # tenants × entities, each extracted, validated and loaded by its own task
    assert dict(ran) == {
        "success": 1 + 3 * targets + 3
    }  # plus plan, marts, summary and the clean-up teardown
