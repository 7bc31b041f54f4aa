"""Errors that cannot fix themselves fail the task at once, without retries, naming the connection and setting.

Each case runs a real operator (``retries=3``) against the sandbox or a real warehouse driver and expects
Airflow's ``AirflowFailException`` (which the task runner never retries) with one message that names the
connection id and the setting to fix. Errors that may pass by themselves keep the task's retries.
"""

from __future__ import annotations

import functools
import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest
import tenacity
from airflow.sdk.exceptions import AirflowFailException

from xero import hooks
from xero.client import build_retrying
from xero.exceptions import XeroServerError, XeroTokenLockError, XeroWarehouseError
from xero.operators import XeroExtractOperator, XeroMartsOperator, XeroPlanOperator, fail_fast
from xero.tokens import FileTokenStore
from xero_sandbox import Sandbox

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"


@pytest.fixture(autouse=True)
def no_backoff_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries within a request happen as in production, without sleeping between them."""
    monkeypatch.setattr(
        hooks,
        "build_retrying",
        functools.partial(build_retrying, wait=tenacity.wait_none(), sleep=lambda s: None),
    )


@pytest.fixture
def warehouse(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Define a working DuckDB warehouse connection ``xero_warehouse``."""
    conn = {"conn_type": "duckdb", "host": str(tmp_path / "warehouse.duckdb")}
    monkeypatch.setenv("AIRFLOW_CONN_XERO_WAREHOUSE", json.dumps(conn))
    return "xero_warehouse"


def closed_port() -> int:
    """Return a local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def plan(conn_id: str, warehouse_conn_id: str = "xero_warehouse") -> XeroPlanOperator:
    return XeroPlanOperator(
        task_id="plan", xero_conn_id=conn_id, warehouse_conn_id=warehouse_conn_id, retries=3
    )


def extract(conn_id: str, tenant_id: str, entity: str, tmp_path: Path) -> XeroExtractOperator:
    return XeroExtractOperator(
        task_id="extract",
        xero_conn_id=conn_id,
        tenant_id=tenant_id,
        entity=entity,
        data_dir=str(tmp_path / "data"),
        retries=3,
    )


def fails_fast(operator: Any, *names: str, context: dict[str, Any] | None = None) -> str:
    """Run ``operator`` and return the message of the AirflowFailException it must raise; check the names."""
    assert operator.retries == 3
    with pytest.raises(AirflowFailException) as info:
        operator.execute(context or {"run_id": "manual__fail_fast"})
    message = str(info.value)
    for name in names:
        assert name in message, message
    return message


class TestXeroConnection:
    def test_wrong_client_secret(self, sb: Sandbox, set_connection, warehouse) -> None:
        set_connection("xero_bad", refresh_token=sb.issue_refresh_token())
        conn = json.loads(os.environ["AIRFLOW_CONN_XERO_BAD"])
        os.environ["AIRFLOW_CONN_XERO_BAD"] = json.dumps({**conn, "password": "not-the-secret"})
        message = fails_fast(plan("xero_bad"), "'xero_bad'", "invalid_client", "password (Client Secret)")
        assert "not-the-secret" not in message

    def test_revoked_refresh_token(self, sb: Sandbox, set_connection, warehouse) -> None:
        set_connection("xero_bad", refresh_token="a-refresh-token-xero-revoked")
        message = fails_fast(
            plan("xero_bad"), "'xero_bad'", "invalid_grant", "python -m xero auth --conn-id xero_bad"
        )
        assert "a-refresh-token-xero-revoked" not in message

    def test_missing_scope(self, sb: Sandbox, set_connection, tmp_path: Path) -> None:
        set_connection("xero_bad", refresh_token=sb.issue_refresh_token(["accounting.settings.read"]))
        fails_fast(
            extract("xero_bad", sb.tenants[0].tenant_id, "invoices", tmp_path),
            "'xero_bad'",
            "'accounting.invoices.read'",
            "'scopes'",
            "python -m xero auth --conn-id xero_bad",
        )

    def test_tenant_not_connected(self, sb: Sandbox, set_connection, tmp_path: Path) -> None:
        first, second = (t.tenant_id for t in sb.tenants)
        set_connection("xero_bad", refresh_token=sb.issue_refresh_token(tenant_ids=[first]))
        fails_fast(
            extract("xero_bad", second, "accounts", tmp_path),
            "'xero_bad'",
            second,
            "'tenant_ids'",
            "reconnect",
        )

    def test_unreachable_api_url_is_retried_in_the_call_then_fails(
        self, sb: Sandbox, set_connection, warehouse
    ) -> None:
        dead = f"http://127.0.0.1:{closed_port()}"
        set_connection("xero_bad", refresh_token=sb.issue_refresh_token(), api_url=dead)
        message = fails_fast(plan("xero_bad"), "'xero_bad'", "'api_url'", dead, "refused")
        assert "ConnectionError" not in message
        assert [r.path for r in sb.requests if r.path.endswith("/connect/token")]  # the token was obtained

    def test_unreachable_identity_url(self, sb: Sandbox, set_connection, warehouse) -> None:
        dead = f"http://127.0.0.1:{closed_port()}"
        set_connection("xero_bad", refresh_token=sb.issue_refresh_token(), identity_url=dead)
        fails_fast(plan("xero_bad"), "'xero_bad'", "'identity_url'", dead)

    def test_unknown_host(self, sb: Sandbox, set_connection, warehouse) -> None:
        set_connection("xero_bad", refresh_token=sb.issue_refresh_token(), api_url="https://xero-api.invalid")
        fails_fast(plan("xero_bad"), "'xero_bad'", "'api_url'", "does not resolve")

    def test_wrong_api_url_answering_404_fails_at_once(self, sb: Sandbox, set_connection, warehouse) -> None:
        set_connection("xero_bad", refresh_token=sb.issue_refresh_token(), api_url=f"{sb.url}/not-xero")
        sb.reset_requests()
        fails_fast(plan("xero_bad"), "'xero_bad'", "'api_url'", "HTTP 404")
        assert len([r for r in sb.requests if "not-xero" in r.path]) == 1  # not retried

    def test_wrong_identity_url_answering_404(self, sb: Sandbox, set_connection, warehouse) -> None:
        set_connection("xero_bad", refresh_token=sb.issue_refresh_token(), identity_url=f"{sb.url}/not-xero")
        fails_fast(plan("xero_bad"), "'xero_bad'", "'identity_url'", "HTTP 404")

    def test_api_url_answering_a_web_page(
        self, requests_mock, monkeypatch, tmp_path: Path, warehouse
    ) -> None:
        api = "https://xero.example.com"
        conn = {
            "conn_type": "xero",
            "login": "cid",
            "password": "secret",
            "extra": {"api_url": api, "oauth_store": f"file:{tmp_path / 't.json'}"},
        }
        monkeypatch.setenv("AIRFLOW_CONN_XERO_HTML", json.dumps(conn))
        FileTokenStore(tmp_path / "t.json").save({"access_token": "at", "expires_at": 4_000_000_000})
        requests_mock.get(
            f"{api}/connections", text="<html>Sign in</html>", headers={"Content-Type": "text/html"}
        )
        fails_fast(plan("xero_html"), "'xero_html'", "'api_url'", "web page")
        assert requests_mock.call_count == 1

    def test_corrupted_token_file_asks_for_a_new_consent(self, sb: Sandbox, set_connection, tmp_path) -> None:
        set_connection("xero_bad")
        (tmp_path / "xero_bad.json").write_text('{"refresh_token": "trunc')
        message = fails_fast(
            extract("xero_bad", sb.tenants[0].tenant_id, "accounts", tmp_path),
            "'xero_bad'",
            "new consent",
            "python -m xero auth --conn-id xero_bad",
        )
        assert "delete" not in message

    def test_missing_xero_connection(self, monkeypatch, warehouse) -> None:
        monkeypatch.delenv("AIRFLOW_CONN_XERO_NOWHERE", raising=False)
        fails_fast(plan("xero_nowhere"), "'xero_nowhere'", "XERO_CONN_ID")

    def test_masked_value_saved_by_the_form(self, sb: Sandbox, set_connection, warehouse) -> None:
        set_connection("xero_bad", refresh_token=sb.issue_refresh_token(), refresh_lock="***")
        fails_fast(plan("xero_bad"), "'xero_bad'", "'refresh_lock'", "'***'")


class TestWarehouseConnection:
    def test_missing_connection(self, monkeypatch) -> None:
        monkeypatch.delenv("AIRFLOW_CONN_NO_SUCH_WAREHOUSE", raising=False)
        op = XeroMartsOperator(
            task_id="marts", sql_dir=str(SQL_DIR), warehouse_conn_id="no_such_warehouse", retries=3
        )
        fails_fast(op, "'no_such_warehouse'", "XERO_WAREHOUSE_CONN_ID")

    def test_unreachable_postgres(self, monkeypatch) -> None:
        monkeypatch.setenv(
            "AIRFLOW_CONN_PG_DOWN", f"postgresql://postgres:pg-Secret-123@127.0.0.1:{closed_port()}/warehouse"
        )
        op = XeroMartsOperator(task_id="marts", sql_dir=str(SQL_DIR), warehouse_conn_id="pg_down", retries=3)
        message = fails_fast(op, "'pg_down'", "PostgreSQL at 127.0.0.1:", "host, port")
        assert "pg-Secret-123" not in message

    def test_duckdb_folder_missing(self, monkeypatch, tmp_path: Path) -> None:
        path = tmp_path / "no" / "such" / "folder" / "xero.duckdb"
        monkeypatch.setenv("AIRFLOW_CONN_DUCK_BAD", json.dumps({"conn_type": "duckdb", "host": str(path)}))
        op = XeroMartsOperator(task_id="marts", sql_dir=str(SQL_DIR), warehouse_conn_id="duck_bad", retries=3)
        fails_fast(op, "'duck_bad'", str(path), "host (the database file path)")

    def test_duckdb_path_not_writable(self, monkeypatch, tmp_path: Path) -> None:
        if os.geteuid() == 0:  # root writes anywhere but on sysfs, which refuses every new file
            folder = Path("/sys")
        else:
            folder = tmp_path / "read-only"
            folder.mkdir()
            folder.chmod(0o555)
        path = folder / "xero-warehouse.duckdb"
        monkeypatch.setenv("AIRFLOW_CONN_DUCK_RO", json.dumps({"conn_type": "duckdb", "host": str(path)}))
        op = XeroPlanOperator(task_id="plan", xero_conn_id="unused", warehouse_conn_id="duck_ro", retries=3)
        monkeypatch.setenv(
            "AIRFLOW_CONN_UNUSED",
            json.dumps({"conn_type": "xero", "login": "c", "password": "s", "extra": {"tenant_ids": "t1"}}),
        )
        fails_fast(op, "'duck_ro'", str(path), "Permission denied", "writable")

    def test_wrong_connection_type(self, monkeypatch) -> None:
        monkeypatch.setenv("AIRFLOW_CONN_WH_HTTP", "http://example.com")
        op = XeroMartsOperator(task_id="marts", sql_dir=str(SQL_DIR), warehouse_conn_id="wh_http", retries=3)
        fails_fast(op, "'wh_http'", "duckdb or postgres")


class TestRetryableErrorsKeepTheirRetries:
    def test_a_locked_duckdb_file_is_retried(self) -> None:
        error = XeroWarehouseError("locked", conn_id="w")
        error.permanent = False

        @fail_fast
        def execute(self: Any, context: Any) -> None:
            raise error

        with pytest.raises(XeroWarehouseError):
            execute(None, {})

    @pytest.mark.parametrize(
        "error",
        [
            XeroServerError("Xero GET Invoices: HTTP 500"),
            XeroTokenLockError("timed out waiting for the token lock"),
        ],
    )
    def test_transient_errors_are_raised_as_they_are(self, error: Exception) -> None:
        @fail_fast
        def execute(self: Any, context: Any) -> None:
            raise error

        with pytest.raises(type(error)):
            execute(None, {})
