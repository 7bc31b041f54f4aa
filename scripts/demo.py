"""Run the whole product once on the embedded defaults and print what landed.

Starts the local Xero sandbox with two seeded organisations, obtains a grant through its OAuth2 consent flow, runs
the ``xero_sync`` DAG with ``airflow dags test`` in an Airflow home inside the repository, stops the sandbox and
prints rows per organisation and table, API calls, quarantined rows and where the warehouse is. The sandbox's data
is deterministic, so a second run finds nothing new and costs about one call per entity.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "plugins")]

from scripts.local_airflow import LocalAirflow  # noqa: E402
from scripts.readiness import ServiceNotReady, wait_until_up  # noqa: E402
from xero.warehouse.publish import read_copy_path  # noqa: E402
from xero_sandbox import airflow_connection  # noqa: E402

HOME = REPO / ".airflow"
DUCKDB_FILE = HOME / "warehouse" / "warehouse.duckdb"
CLIENT_ID = "demo-client"
CLIENT_SECRET = "demo-client-secret"  # the sandbox's own demo credential, not a Xero secret
SEED = 42


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def sandbox(log: Path):
    """Start ``python -m xero_sandbox`` on a free port and stop it afterwards."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "xero_sandbox",
        "--port",
        str(port),
        "--seed",
        str(SEED),
        "--tenants",
        "2",
    ]
    command += ["--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET]
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    try:
        try:
            wait_until_up(f"{url}/_sandbox/clock", what="the Xero sandbox", timeout=120, process=process)
        except ServiceNotReady as exc:
            raise SystemExit(f"{exc}; see {log}") from None
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def warehouse_conn() -> tuple[str, str]:
    """Return the warehouse connection (the environment's, or a DuckDB file in the Airflow home) and its kind."""
    configured = os.environ.get("AIRFLOW_CONN_XERO_WAREHOUSE")
    if configured:
        kind = "postgres" if configured.startswith("postgres") else "duckdb"
        return configured, kind
    DUCKDB_FILE.parent.mkdir(parents=True, exist_ok=True)
    return json.dumps({"conn_type": "duckdb", "host": str(DUCKDB_FILE)}), "duckdb"


def query(sql: str) -> list[tuple[Any, ...]]:
    """Run a read query on the warehouse the DAG loaded (``{{ schema }}`` is the ``xero`` schema)."""
    from xero.warehouse import Warehouse

    return Warehouse.from_conn_id("xero_warehouse", schema="xero").query(sql)


def print_summary(calls: dict[str, int]) -> None:
    """Print what the run did, from the warehouse's own bookkeeping."""
    state = query(
        "select tenant_id, entity, rows_loaded, rows_inserted + rows_updated, api_calls, stats "
        "from {{ schema }}._sync_state "
        "where last_run_id = (select max(last_run_id) from {{ schema }}._sync_state) order by tenant_id, entity"
    )
    names = {}
    for tenant_id, *_, stats in state:
        stats = json.loads(stats) if isinstance(stats, str) else stats or {}
        names[tenant_id] = stats.get("tenant_name") or tenant_id
    print("\nThis run, per organisation and entity:")
    print(f"  {'organisation':<26} {'entity':<10} {'records read':>12} {'rows changed':>12} {'API calls':>9}")
    for tenant_id, entity, loaded, changed, api_calls, _ in state:
        print(f"  {names[tenant_id]:<26} {entity:<10} {loaded:>12} {changed:>12} {api_calls:>9}")
    print("\nAll API calls the sandbox answered during the run (accounting endpoints, per organisation):")
    for tenant_id, count in sorted(calls.items()):
        print(f"  {names.get(tenant_id, tenant_id):<26} {count}")
    print("\nRows in the warehouse, per organisation and table:")
    for table in ("organisation", "account", "contact", "invoice", "invoice_line_item", "payment"):
        for tenant_id, count in query(
            f"select tenant_id, count(*) from {{{{ schema }}}}.{table} group by tenant_id order by 1"
        ):
            print(f"  {names.get(tenant_id, tenant_id):<26} {table:<18} {count:>7}")
    quarantined = query("select count(*) from {{ schema }}._quarantine")[0][0]
    print(f"\nQuarantined rows: {quarantined} (table xero._quarantine, with the reason for each)")
    print(f"Validation reports (Data Docs, open in a browser): {HOME / 'data' / 'data_docs' / 'index.html'}")
    total_calls = sum(row[4] for row in state)
    total_changed = sum(row[3] for row in state)
    if total_changed == 0:
        print(
            f"\nIncremental run: nothing changed since the last run; {total_calls} API calls for "
            f"{len(names)} organisations × {len(state) // max(len(names), 1)} entities (one call each)."
        )
    else:
        print(f"\n{total_changed} rows changed using {total_calls} API calls (1,000 records a page).")


def main() -> int:
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"  # this process only reads the warehouse
    HOME.mkdir(exist_ok=True)
    warehouse, kind = warehouse_conn()
    os.environ["AIRFLOW_CONN_XERO_WAREHOUSE"] = warehouse
    run_log = HOME / "demo-run.log"
    run_log.write_text("")
    with sandbox(HOME / "sandbox.log") as url:
        from xero.consent import obtain_refresh_token_headless

        refresh_token = obtain_refresh_token_headless(url, CLIENT_ID, CLIENT_SECRET)
        token_file = HOME / "xero_tokens.json"
        token_file.unlink(missing_ok=True)
        connection = airflow_connection(
            url,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            token_file=token_file,
            refresh_token=refresh_token,
            authorize=True,
        )
        airflow = LocalAirflow(
            HOME,
            env={
                "AIRFLOW_CONN_XERO_DEFAULT": json.dumps(connection),
                "AIRFLOW_CONN_XERO_WAREHOUSE": warehouse,
                "XERO_DATA_DIR": str(HOME / "data"),
            },
        )
        print(f"Sandbox Xero at {url}; Airflow home {HOME}; warehouse: {kind}")
        print("Preparing Airflow (metadata database, pool)…", flush=True)
        airflow.prepare(log=run_log)
        requests.delete(f"{url}/_sandbox/requests", timeout=60)
        print("Running the xero_sync DAG with `airflow dags test` (log: .airflow/demo-run.log)…", flush=True)
        started = time.monotonic()
        result = airflow.dags_test("xero_sync", log=run_log)
        elapsed = time.monotonic() - started
        calls = Counter(
            call["tenant_id"]
            for call in requests.get(f"{url}/_sandbox/requests", timeout=60).json()
            if call["path"].startswith("/api.xro/2.0/")
        )
    if result.returncode:
        print(run_log.read_text()[-4000:])
        print(f"\nThe DAG run failed after {elapsed:.0f} s; the full log is {run_log}")
        return 1
    print(f"The DAG run succeeded in {elapsed:.0f} s.")
    print_summary(calls)
    if kind == "duckdb":
        read_copy = read_copy_path(DUCKDB_FILE)
        print(
            f"\nDuckDB file to open: {read_copy} (DuckDB 1.2 or later; never {DUCKDB_FILE.name}, the sync's)"
        )
        print(
            "Try: .venv/bin/python -c \"import duckdb; print(duckdb.connect('"
            f"{read_copy.relative_to(REPO)}', read_only=True).sql('select * from xero.xero__revenue_by_month limit 10'))\""
        )
    print("Run `make demo` again: the second run is incremental and should change nothing.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
