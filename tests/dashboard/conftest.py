"""Fixtures for the dashboard tests: a demo warehouse loaded by the real DAG, the dashboard server, Chromium.

``demo_warehouse`` runs the ``xero_sync`` DAG once per session and dialect against the local sandbox (DuckDB
file or a PostgreSQL schema of its own). ``start_dashboard`` serves ``python -m dashboard`` on a free port in
a subprocess with a given warehouse environment. ``browser`` is Debian's Chromium driven by Playwright: the
tests skip with the reason when it is missing, and fail instead when ``REQUIRE_BROWSER=1`` (as in CI).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from scripts.local_airflow import LocalAirflow
from tests.e2e.support import CLIENT_ID, CLIENT_SECRET, dag_env
from xero_sandbox import Sandbox, SandboxConfig

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass
class DemoWarehouse:
    """A warehouse the DAG loaded: its dialect, the environment that names it, and its sandbox."""

    dialect: str
    env: dict[str, str]
    sandbox: Sandbox

    @contextmanager
    def environ(self) -> Iterator[None]:
        """Set :attr:`env` in this process while the block runs."""
        saved = {name: os.environ.get(name) for name in self.env}
        os.environ.update(self.env)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def query(self, name: str, **params: Any) -> Any:
        """Run the dashboard's named query on this warehouse, as the dashboard does."""
        from dashboard.queries import fetch
        from dashboard.source import resolve_source

        with self.environ(), resolve_source().connect() as connection:
            return fetch(connection, name, params)

    def sql(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Run any SQL on this warehouse's marts (tables unqualified)."""
        import sqlalchemy as sa

        from dashboard.source import resolve_source

        with self.environ(), resolve_source().connect() as connection:
            return [tuple(row) for row in connection.execute(sa.text(sql), params or {})]


def _run_demo(dialect: str, work: Path, warehouse_conn: str, schema: str) -> DemoWarehouse:
    sb = Sandbox(
        SandboxConfig(
            seed=5, tenants=2, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, contacts=40, invoices=300
        )
    )
    # A record Xero sends with a date that does not parse: the sync quarantines it, so the page has a count.
    sb.update_invoice(sb.tenants[0].tenant_id, DueDate="/Date(not-a-date)/")
    with sb.serve():
        env = dag_env(sb, work, warehouse_conn, schema)
        airflow = LocalAirflow(work / "airflow", env=env)
        airflow.prepare()
        result = airflow.dags_test("xero_sync")
        assert result.returncode == 0, (
            f"the demo sync failed:\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
        )
    return DemoWarehouse(
        dialect,
        {"AIRFLOW_CONN_XERO_WAREHOUSE": warehouse_conn, "XERO_SCHEMA": schema, "XERO_WAREHOUSE_CONN_ID": ""},
        sb,
    )


@pytest.fixture(scope="session", params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def demo_warehouse(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DemoWarehouse]:
    """A warehouse loaded from the sandbox by one run of the real DAG (DuckDB and PostgreSQL)."""
    work = tmp_path_factory.mktemp(f"demo-{request.param}")
    if request.param == "duckdb":
        duckdb_conn = json.dumps({"conn_type": "duckdb", "host": str(work / "warehouse.duckdb")})
        yield _run_demo("duckdb", work, duckdb_conn, "xero")
        return
    import psycopg

    url = request.getfixturevalue("postgres_url")  # session-scoped: skips or fails without the server
    schema = f"test_dashboard_{uuid.uuid4().hex[:10]}"
    try:
        yield _run_demo("postgres", work, url, schema)
    finally:
        with psycopg.connect(url, autocommit=True) as pg:
            pg.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def free_port() -> int:
    """Return a TCP port free on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class DashboardServer:
    """A running dashboard: its URL and the file its output goes to."""

    url: str
    log: Path

    def output(self) -> str:
        """Return what the server printed so far."""
        return self.log.read_text(errors="replace")


StartDashboard = Callable[[dict[str, str]], DashboardServer]


@pytest.fixture
def start_dashboard(tmp_path: Path) -> Iterator[StartDashboard]:
    """Return ``start(env)``: serve the dashboard with ``env`` on a free port until the test ends."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(env: dict[str, str]) -> DashboardServer:
        port = free_port()
        log = tmp_path / f"dashboard-{port}.log"
        home = tmp_path / f"airflow-home-{port}"
        home.mkdir()
        environ = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "XERO_"))},
            "AIRFLOW_HOME": str(home),
            "HOME": str(home),
            "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "plugins")]),
            **{k: v for k, v in env.items() if v},
        }
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "dashboard", "--port", str(port)],
                cwd=home,
                env=environ,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        processes.append(process)
        server = DashboardServer(f"http://127.0.0.1:{port}", log)
        deadline = time.monotonic() + 90
        while True:
            try:
                if requests.get(f"{server.url}/_stcore/health", timeout=2).ok:
                    return server
            except requests.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the dashboard did not start:\n{server.output()[-4000:]}")
            time.sleep(0.3)

    yield start
    for process in processes:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium through Playwright (no browser download)."""
    reason = None
    if not Path(CHROMIUM).exists():
        reason = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    else:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            reason = "the playwright package is not installed"
    if reason:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"{reason} (REQUIRE_BROWSER=1)")
        pytest.skip(reason)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser page, 1400 × 1000."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()
