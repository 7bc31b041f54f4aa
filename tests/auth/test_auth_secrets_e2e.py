"""One whole DAG run on DuckDB at DEBUG level, then every task log, the command output and every XCom are searched.

None may contain the client secret, any refresh token the sandbox issued or any access token it issued. The run
logs at DEBUG (``AIRFLOW__LOGGING__LOGGING_LEVEL=DEBUG``), where Airflow's task supervisor logs the requests a
task sends it, including each request to mask a secret; it runs once with the token store in a file and once
in the default store, an Airflow Variable (whose writes go through the supervisor too).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from scripts.local_airflow import LocalAirflow
from xero.consent import obtain_refresh_token_headless
from xero.tokens import FileTokenStore
from xero_sandbox import Sandbox, SandboxConfig, airflow_connection

pytestmark = pytest.mark.e2e

CLIENT_ID = "secrets-client"
CLIENT_SECRET = "secrets-client-Secret-0123456789"


def _line_around(text: str, secret: str) -> str:
    """Return the start of the line where ``secret`` occurs, with the secret itself hidden."""
    start = text.rfind("\n", 0, text.index(secret)) + 1
    end = text.find("\n", start)
    line = text[start : end if end != -1 else None].replace(secret, "<SECRET>")
    return line[line.find("loc=") :][:200] if "loc=" in line else line[:200]


@pytest.mark.parametrize("store", ["file", "variable"])
def test_no_secret_in_logs_output_or_xcom_at_debug(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sb = Sandbox(
        SandboxConfig(
            seed=3,
            tenants=2,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            accounts=10,
            contacts=20,
            invoices=40,
        ).without_limits()
    )
    with sb.serve() as url:
        bootstrap = obtain_refresh_token_headless(url, CLIENT_ID, CLIENT_SECRET)
        token_file = tmp_path / "tokens.json"
        connection = airflow_connection(
            url,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            token_file=token_file,
            refresh_token=bootstrap,
        )
        if store == "variable":
            connection["extra"]["oauth_store"] = "variable"
        env = {
            "AIRFLOW_CONN_XERO_DEFAULT": json.dumps(connection),
            "AIRFLOW_CONN_XERO_WAREHOUSE": json.dumps(
                {"conn_type": "duckdb", "host": str(tmp_path / "warehouse.duckdb")}
            ),
            "XERO_SCHEMA": "xero",
            "XERO_DATA_DIR": str(tmp_path / "data"),
            "XERO_TASK_RETRIES": "0",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "DEBUG",
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        home = tmp_path / "airflow"
        airflow = LocalAirflow(home, env=env)
        airflow.prepare()
        result = airflow.dags_test("xero_sync")
        assert result.returncode == 0, f"{result.stdout[-6000:]}\n{result.stderr[-3000:]}"

        issued_refresh = set(sb.auth._refresh)
        issued_access = set(sb.auth._access)
    if store == "file":
        stored = FileTokenStore(token_file).load()
    else:
        shown = airflow.run("variables", "get", "xero_token__xero_default")  # decrypted with the Fernet key
        assert shown.returncode == 0, shown.stderr[-2000:]
        stored = json.loads(next(line for line in shown.stdout.splitlines() if line.startswith("{")))
    assert stored is not None
    assert bootstrap in issued_refresh and stored["refresh_token"] in issued_refresh
    assert stored["access_token"] in issued_access
    assert len(issued_refresh) >= 2, "the run must have rotated the refresh token"
    secrets = {
        "client secret": {CLIENT_SECRET},
        "refresh token": issued_refresh,
        "access token": issued_access,
    }

    places: dict[str, str] = {"dags test stdout": result.stdout, "dags test stderr": result.stderr}
    # ``dags test`` runs the tasks in-process: their logs go to its output, and to files if configured
    for path in (p for p in (home / "logs").rglob("*") if p.is_file()):
        places[str(path.relative_to(home))] = path.read_text(encoding="utf-8", errors="replace")
    with sqlite3.connect(home / "airflow.db") as db:
        xcoms = db.execute("select dag_id, task_id, map_index, key, value from xcom").fetchall()
    assert xcoms, "the run stored no XCom"
    for dag_id, task_id, map_index, key, value in xcoms:
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        places[f"xcom {dag_id}.{task_id}[{map_index}].{key}"] = text
    # the task logs really are in what is searched (so missing output cannot pass for clean output)
    output = result.stdout + result.stderr
    assert "obtained a new access token" in output and "[DAG TEST] end task" in output
    assert "[debug" in output and "Sending request" in output, "the run did not log at DEBUG"
    print(f"searched {len(places)} places ({len(xcoms)} XComs, {len(output)} characters of output)")

    leaks = [
        f"{kind} in {place}: {_line_around(text, secret)}"
        for place, text in places.items()
        for kind, values in secrets.items()
        for secret in values
        if secret in text
    ]
    assert not leaks, leaks
