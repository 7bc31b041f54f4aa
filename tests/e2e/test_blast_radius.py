"""One bad organisation or entity never holds back the rest: ``airflow dags test`` of ``xero_sync``.

Three organisations are configured, but the consent covers two of them (the third was disconnected) and lacks
the payments scope. The two good organisations' accounts, contacts and invoices land; every chain of the third and
every payments chain fail on their own; the marts are rebuilt; the run ends failed and its summary names each
failed tenant × entity with the reason. On DuckDB and PostgreSQL.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from scripts.local_airflow import LocalAirflow
from tests.e2e.support import CLIENT_ID, CLIENT_SECRET
from tests.e2e.test_sync_dag import WarehouseView, expected_counts
from xero_sandbox import Sandbox, SandboxConfig, airflow_connection

pytestmark = pytest.mark.e2e

#: Read scopes of every entity but payments (granular scopes, as new Xero apps use).
WITHOUT_PAYMENTS = [
    "accounting.settings.read",
    "accounting.contacts.read",
    "accounting.invoices.read",
    "offline_access",
]


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse_env(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    if request.param == "duckdb":
        return json.dumps({"conn_type": "duckdb", "host": str(tmp_path / "warehouse.duckdb")}), "xero"
    return request.getfixturevalue("postgres_url"), request.getfixturevalue("pg_schema")


def test_a_disconnected_organisation_and_a_missing_scope_fail_alone(
    tmp_path: Path, warehouse_env: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse_conn, schema = warehouse_env
    sb = Sandbox(
        SandboxConfig(
            seed=13,
            tenants=3,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            accounts=10,
            contacts=15,
            invoices=30,
        )
    )
    good, bad = [t.tenant_id for t in sb.tenants[:2]], sb.tenants[2].tenant_id
    with sb.serve() as url:
        connection = airflow_connection(
            url,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            token_file=tmp_path / "tokens.json",
            refresh_token=sb.issue_refresh_token(scopes=WITHOUT_PAYMENTS, tenant_ids=good),
            tenant_ids=[*good, bad],
        )
        env = {
            "AIRFLOW_CONN_XERO_DEFAULT": json.dumps(connection),
            "AIRFLOW_CONN_XERO_WAREHOUSE": warehouse_conn,
            "XERO_SCHEMA": schema,
            "XERO_DATA_DIR": str(tmp_path / "data"),
            "XERO_TASK_RETRIES": "0",
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        airflow = LocalAirflow(tmp_path / "airflow", env=env)
        airflow.prepare()
        result = airflow.dags_test("xero_sync")

    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-6000:]

    # The good organisations' readable entities are all in the warehouse, exactly as the sandbox serves them.
    warehouse = WarehouseView(schema)
    expected = expected_counts(sb)
    for table in ("account", "contact", "invoice", "invoice_line_item", "payment"):
        loaded = dict(warehouse.rows(f"select tenant_id, count(*) from {{s}}.{table} group by tenant_id"))
        wanted = {} if table == "payment" else {tenant: expected[(tenant, table)] for tenant in good}
        assert loaded == wanted, table
    state = {
        (tenant, entity)
        for tenant, entity in warehouse.rows(
            "select tenant_id, entity from {s}._sync_state where last_run_id is not null"
        )
    }
    assert state == {
        (tenant, entity) for tenant in good for entity in ("organisation", "accounts", "contacts", "invoices")
    }
    # The marts were rebuilt from what loaded, and their Asset event says what changed.
    [(revenue_rows,)] = warehouse.rows("select count(*) from {s}.xero__revenue_by_month")
    assert revenue_rows > 0
    with sqlite3.connect(tmp_path / "airflow" / "airflow.db") as db:
        [(extra,)] = db.execute("select extra from asset_event where source_task_id = 'marts'").fetchall()
    lines = sum(expected[(tenant, "invoice_line_item")] for tenant in good)
    assert json.loads(extra) == {
        "loads": 8,
        "rows_changed": {
            "organisation": 2,
            "account": 2 * 10,
            "contact": 2 * 15,
            "invoice": 2 * 30,
            "invoice_line_item": lines,
        },
    }

    # The summary is a table naming every tenant × entity, and the run failed naming each failure and why.
    failed = re.search(r"(\d+) part\(s\) of the Xero sync failed[^\n]*\n((?:\s+\S[^\n]*\n?)+)", output)
    assert failed, output[-6000:]
    lines = [line.strip() for line in failed.group(2).splitlines() if " failed: " in line]
    assert int(failed.group(1)) == len(lines) == 5 + 2
    for entity in ("organisation", "accounts", "contacts", "invoices", "payments"):
        assert any(line.startswith(f"{bad} × {entity}: extract failed:") for line in lines), (entity, lines)
    for tenant in good:
        [line] = [line for line in lines if line.startswith(f"{tenant} × payments")]
        assert "accounting.payments.read" in line  # the scope to add is named
    [bad_accounts] = [line for line in lines if line.startswith(f"{bad} × accounts")]
    assert "AuthenticationUnsuccessful" in bad_accounts or "not connected" in bad_accounts
    header = re.search(
        r"tenant\s+entity\s+read\s+loaded\s+quarantined\s+warnings\s+stale\s+calls\s+state", output
    )
    assert header, output[-6000:]
    for tenant in good:
        assert re.search(rf"{tenant}\s+invoices\s+30\s+30\s+0\s+0\s+0\s+\d+\s+ok", output)
