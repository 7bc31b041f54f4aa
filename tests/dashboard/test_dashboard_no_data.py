"""A dashboard pointed at a missing, empty or unreachable warehouse explains itself.

Never a stack trace, on the page or in the server's output, and never the connection's password. The missing
and unreachable warehouses are served and loaded in Chromium; the other cases run the app in-process with
Streamlit's ``AppTest``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.dashboard.browser import open_page
from tests.dashboard.conftest import REPO, StartDashboard, free_port
from xero.warehouse.publish import read_copy_path

NO_DATA = "No data yet: run the sync (make demo), then reload this page."


def _duckdb_env(path: Path) -> dict[str, str]:
    return {"AIRFLOW_CONN_XERO_WAREHOUSE": json.dumps({"conn_type": "duckdb", "host": str(path)})}


def _shown(page: Any, start_dashboard: StartDashboard, env: dict[str, str], heading: str) -> str:
    """Open the dashboard served with ``env``; return the page's text plus what the server printed."""
    server = start_dashboard(env)
    open_page(page, server.url, "", '[data-testid="stAlert"]')
    assert page.get_by_role("heading", name=heading, exact=True).count() == 1
    text = page.inner_text("body")
    assert "Traceback" not in text and "Traceback" not in server.output()
    return f"{text}\n{server.output()}"


def test_missing_duckdb_warehouse(tmp_path: Path, start_dashboard: StartDashboard, page: Any) -> None:
    text = _shown(page, start_dashboard, _duckdb_env(tmp_path / "nowhere.duckdb"), "No data yet")
    assert NO_DATA in text
    assert f"The read copy {read_copy_path(tmp_path / 'nowhere.duckdb')} does not exist yet" in text


def _app_text(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str]) -> tuple[str, str]:
    """Run the app in-process with ``env``; return its title and all the text it shows."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    for name in ("AIRFLOW_CONN_XERO_WAREHOUSE", "XERO_SCHEMA", "XERO_WAREHOUSE_CONN_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow-home"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    st.cache_resource.clear()
    st.cache_data.clear()
    app = AppTest.from_file(str(REPO / "dashboard" / "app.py"), default_timeout=120).run()
    assert not app.exception
    texts = [
        element.value for kind in ("info", "error", "markdown", "caption") for element in getattr(app, kind)
    ]
    [title] = [element.value for element in app.title]
    return title, "\n".join(str(text).replace("\\", "") for text in texts)


def test_empty_duckdb_warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    warehouse = tmp_path / "empty.duckdb"
    duckdb.connect(str(read_copy_path(warehouse))).close()
    title, text = _app_text(monkeypatch, tmp_path, _duckdb_env(warehouse))
    assert title == "No data yet"
    assert NO_DATA in text
    assert "No schema 'xero' in DuckDB read copy" in text


def test_duckdb_warehouse_without_marts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    warehouse = tmp_path / "bare.duckdb"
    with duckdb.connect(str(read_copy_path(warehouse))) as conn:
        conn.execute("create schema xero")
    title, text = _app_text(monkeypatch, tmp_path, _duckdb_env(warehouse))
    assert title == "No data yet"
    assert NO_DATA in text
    assert "No marts in DuckDB read copy" in text


@pytest.mark.postgres
def test_empty_postgres_schema(
    postgres_url: str, pg_schema: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"AIRFLOW_CONN_XERO_WAREHOUSE": postgres_url, "XERO_SCHEMA": pg_schema}
    title, text = _app_text(monkeypatch, tmp_path, env)
    assert title == "No data yet"
    assert NO_DATA in text
    assert f"No schema '{pg_schema}' in PostgreSQL database" in text


def test_unsupported_connection_type(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"AIRFLOW_CONN_XERO_WAREHOUSE": json.dumps({"conn_type": "mysql", "host": "db"})}
    title, text = _app_text(monkeypatch, tmp_path, env)
    assert title == "The warehouse cannot be reached"
    assert "has type 'mysql'; the dashboard reads duckdb and postgres" in text


def test_unreachable_postgres_keeps_the_password(start_dashboard: StartDashboard, page: Any) -> None:
    port = free_port()
    env = {"AIRFLOW_CONN_XERO_WAREHOUSE": f"postgresql://analyst:s3cret-pw@127.0.0.1:{port}/warehouse"}
    text = _shown(page, start_dashboard, env, "The warehouse cannot be reached")
    assert f"Cannot open PostgreSQL database 127.0.0.1:{port}/warehouse" in text
    assert "Check the Airflow connection of the warehouse" in text
    assert "s3cret-pw" not in text  # neither on the page nor in the server's output
