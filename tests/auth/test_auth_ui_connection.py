"""A Xero connection created in the Airflow UI works: created through the REST API as the form sends it, then synced.

The connection form's defaults are left untouched (they come from ``/ui/connections/hook_meta``, which is
where the UI reads them and where Airflow masks the fields it thinks are secrets). The stored connection
is opened in the Edit form and saved unchanged, tested with the Test button and with
``airflow connections test``, and then the whole ``xero_sync`` DAG runs on it against the sandbox with
its tokens in the default store (an Airflow Variable in the metadata database).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from scripts.local_airflow import REPO, LocalAirflow
from xero import CONN_FIELDS
from xero.consent import obtain_refresh_token_headless
from xero_sandbox import Sandbox, SandboxConfig

pytestmark = pytest.mark.e2e

CONN_ID = "xero_ui"
CLIENT_SECRET = "ui-client-Secret-0123456789"


def test_a_connection_made_in_the_ui_syncs(tmp_path: Path) -> None:
    sb = Sandbox(
        SandboxConfig(
            seed=11, tenants=2, client_secret=CLIENT_SECRET, accounts=8, contacts=12, invoices=30
        ).without_limits()
    )
    warehouse = tmp_path / "warehouse.duckdb"
    env = {
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW__API_AUTH__JWT_SECRET": "ui-connection-test-jwt-secret-" + "0" * 40,
        "XERO_UI_CLIENT_SECRET": CLIENT_SECRET,
        "XERO_CONN_ID": CONN_ID,
        "AIRFLOW_CONN_XERO_WAREHOUSE": json.dumps({"conn_type": "duckdb", "host": str(warehouse)}),
        "XERO_SCHEMA": "xero",
        "XERO_DATA_DIR": str(tmp_path / "data"),
        "XERO_TASK_RETRIES": "0",
    }
    airflow = LocalAirflow(tmp_path / "airflow", env=env)
    airflow.prepare()
    with sb.serve() as url:
        bootstrap = obtain_refresh_token_headless(url, sb.config.client_id, CLIENT_SECRET)
        made = subprocess.run(
            [
                sys.executable,
                str(REPO / "tests" / "auth" / "ui_connection.py"),
                CONN_ID,
                url,
                sb.config.client_id,
                bootstrap,
            ],
            env=airflow.environ(),
            capture_output=True,
            text=True,
            check=False,
        )
        assert made.returncode == 0, made.stderr[-4000:]
        report = json.loads(made.stdout.split("UI-CONNECTION-REPORT ", 1)[1])
        tested_cli = airflow.run("connections", "test", CONN_ID)
        synced = airflow.dags_test("xero_sync")
        issued_refresh = set(sb.auth._refresh)

    # the form shows every default as it is (none masked as "***") and labels the credentials
    defaults = {name: f["schema"]["default"] for name, f in CONN_FIELDS.items() if "default" in f["schema"]}
    assert {name: report["form_defaults"][name] for name in defaults} == defaults
    assert report["standard_fields"]["password"]["title"] == "Client Secret"
    assert report["standard_fields"]["host"]["hidden"] is True

    # saved; the Edit form masks only the secrets, and saving it unchanged keeps them
    assert report["create"]["status"] == 201, report["create"]
    shown = json.loads(report["edit_form"]["extra"])
    assert [name for name, value in shown.items() if value == "***"] == ["refresh_token"]
    assert shown["oauth_store"] == "variable" and shown["refresh_lock"] == "file"
    assert report["edit_save"]["status"] == 200

    # the Test button and the CLI test pass, and spend no refresh token
    assert report["test"]["status"] is True, report["test"]
    assert "Xero accepted the Client ID and Client Secret" in report["test"]["message"]
    assert tested_cli.returncode == 0 and "Connection success" in tested_cli.stdout, tested_cli.stdout[-2000:]

    # the DAG syncs every organisation with it; the rotated token lives in the default Variable store
    assert synced.returncode == 0, f"{synced.stdout[-6000:]}\n{synced.stderr[-3000:]}"
    with duckdb.connect(str(warehouse), read_only=True) as db:
        loaded = dict(db.execute("select tenant_id, count(*) from xero.invoice group by 1").fetchall())
    assert loaded == {t.tenant_id: sb.count(t.tenant_id, "invoices") for t in sb.tenants}
    with sqlite3.connect(tmp_path / "airflow" / "airflow.db") as db:
        keys = {row[0] for row in db.execute("select key from variable")}
    assert f"xero_token__{CONN_ID}" in keys
    assert len(issued_refresh) == 2, "one refresh for the whole run: the tests spent none"
