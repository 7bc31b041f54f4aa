"""The real DAG under a spent daily limit: the run succeeds, says why invoices stopped and keeps the rest.

The one fault test that runs ``airflow dags test``; every other case calls the pipeline steps directly.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pytest

from scripts.local_airflow import LocalAirflow
from xero_sandbox import Sandbox, SandboxConfig, airflow_connection

pytestmark = pytest.mark.e2e


def test_daily_limit_ends_the_dag_run_successfully(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sb = Sandbox(SandboxConfig(seed=9, tenants=1, accounts=10, contacts=20, invoices=30))
    tenant = sb.tenants[0].tenant_id
    database = tmp_path / "warehouse.duckdb"
    with sb.serve() as url:
        connection = airflow_connection(
            url,
            client_id=sb.config.client_id,
            client_secret=sb.config.client_secret,
            token_file=tmp_path / "tokens.json",
            refresh_token=sb.issue_refresh_token(),
        )
        env = {
            "AIRFLOW_CONN_XERO_DEFAULT": json.dumps(connection),
            "AIRFLOW_CONN_XERO_WAREHOUSE": json.dumps({"conn_type": "duckdb", "host": str(database)}),
            "XERO_DATA_DIR": str(tmp_path / "data"),
            "XERO_TASK_RETRIES": "0",
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        airflow = LocalAirflow(tmp_path / "airflow", env=env)
        airflow.prepare()
        sb.faults.script("Invoices", 1, "429_day", tenant_id=tenant)

        result = airflow.dags_test("xero_sync")

    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "daily limit reached, resumes after" in output
    invoice_calls = [r for r in sb.requests if r.endpoint == "Invoices"]
    assert [r.status for r in invoice_calls] == [429]  # one refused call, no retries
    with duckdb.connect(str(database), read_only=True) as conn:
        counts = dict(
            conn.execute(
                # the organisation is read whole every run: it has no watermark to show how far a read got
                "select entity, watermark is not null from xero._sync_state where entity <> 'organisation'"
            ).fetchall()
        )
        [(contacts,)] = conn.execute("select count(*) from xero.contact").fetchall()
    assert set(counts) == {"accounts", "contacts", "invoices", "payments"} and counts["invoices"] is False
    # The daily limit is the tenant's: an entity read after the refused call stops too (without a call), and
    # says so; one read before it is complete.
    for entity, complete in counts.items():
        assert complete or re.search(rf"Xero {entity} for [^\n]*: daily limit reached, resumes after", output)
    assert contacts == (sb.count(tenant, "contacts") if counts["contacts"] else 0)
