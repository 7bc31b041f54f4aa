"""A real ``airflow api-server`` serves the Data Docs site through the provider's plugin, to signed-in users only.

The plugin is found the way an installed provider's is: through its ``airflow.plugins`` entry point (declared in
plugins/pyproject.toml and given to the server here as a distribution on its path).
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import tomllib
from pathlib import Path

import pytest
import requests

from scripts.local_airflow import LocalAirflow
from xero import datadocs

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
TENANT = "4f7a3d1e-9b2c-4e8f-a1d5-6c3b2a1f0e9d"
RUN = "scheduled__2026-12-03T10:00:00+00:00"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _entry_point_distribution(folder: Path) -> Path:
    """Write a distribution declaring the provider's ``airflow.plugins`` entry points, as pip would install it."""
    project = tomllib.loads((REPO / "plugins" / "pyproject.toml").read_text())["project"]
    info = folder / "airflow_provider_xero_plugin-0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: airflow-provider-xero-plugin\nVersion: 0\n")
    lines = [f"{name} = {target}" for name, target in project["entry-points"]["airflow.plugins"].items()]
    (info / "entry_points.txt").write_text("[airflow.plugins]\n" + "\n".join(lines) + "\n")
    return folder


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the api-server exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            requests.get(url, timeout=5)
            return
        except requests.RequestException as exc:
            last = exc
            time.sleep(1)
    raise AssertionError(
        f"the api-server at {url} did not answer within {seconds:.0f} s (last error: {last})"
    )


def test_api_server_serves_the_site_to_signed_in_users(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    datadocs.publish(
        datadocs.site_dir(data_dir),
        datadocs.Report(
            tenant_id=TENANT,
            tenant_name="Demo Company (NZ)",
            entity="invoices",
            run_id=RUN,
            status="passed",
            records=3,
            kept=3,
            quarantined=0,
            quarantined_by_normalizer=0,
            quarantined_by_validator=0,
            duplicates_dropped=0,
            bad_share=0.0,
            max_bad_share=0.05,
            rows={"invoice": 3},
            reasons={},
        ),
    )
    (tmp_path / "secret.txt").write_text("not for the browser")
    port = _free_port()
    airflow = LocalAirflow(
        tmp_path / "airflow",
        env={
            "XERO_DATA_DIR": str(data_dir),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "analyst:viewer",
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(tmp_path / "no-plugins"),
        },
    )
    airflow.prepare()
    environ = airflow.environ()
    environ["PYTHONPATH"] = f"{_entry_point_distribution(tmp_path / 'dist')}:{environ['PYTHONPATH']}"
    log = tmp_path / "api-server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            airflow.command("api-server", "--host", "127.0.0.1", "--port", str(port)),
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(f"{base}/api/v2/monitor/health", process, log)
        site = f"{base}/xero/data-docs"
        assert requests.get(f"{site}/", timeout=30).status_code == 401
        passwords = json.loads(
            (tmp_path / "airflow" / "simple_auth_manager_passwords.json.generated").read_text()
        )
        token = requests.post(
            f"{base}/auth/token",
            json={"username": "analyst", "password": passwords["analyst"]},
            timeout=30,
        ).json()["access_token"]
        cookies = {"_token": token}  # the UI's session cookie
        index = requests.get(f"{site}/", cookies=cookies, timeout=30)
        assert index.status_code == 200 and "Demo Company (NZ)" in index.text
        page = requests.get(
            f"{site}/{datadocs.report_page(TENANT, 'invoices', RUN)}", cookies=cookies, timeout=30
        )
        assert page.status_code == 200 and "invoices · Demo Company (NZ)" in page.text
        escape = requests.get(f"{site}/%2e%2e/%2e%2e/secret.txt", cookies=cookies, timeout=30)
        assert escape.status_code == 404 and "not for the browser" not in escape.text
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
