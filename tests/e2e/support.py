"""Helpers for end-to-end runs of the DAG against the local sandbox."""

from __future__ import annotations

import json
from pathlib import Path

from xero_sandbox import Sandbox, airflow_connection

CLIENT_ID = "e2e-client"
CLIENT_SECRET = "e2e-client-secret"


def dag_env(sb: Sandbox, tmp_path: Path, warehouse_conn: str, schema: str = "xero") -> dict[str, str]:
    """Return the environment of a DAG run that reads ``sb`` and loads ``warehouse_conn``."""
    assert sb.url, "serve the sandbox first"
    connection = airflow_connection(
        sb.url,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        token_file=tmp_path / "tokens.json",
        refresh_token=sb.issue_refresh_token(),
    )
    return {
        "AIRFLOW_CONN_XERO_DEFAULT": json.dumps(connection),
        "AIRFLOW_CONN_XERO_WAREHOUSE": warehouse_conn,
        "XERO_SCHEMA": schema,
        "XERO_DATA_DIR": str(tmp_path / "data"),
        "XERO_TASK_RETRIES": "0",
    }
