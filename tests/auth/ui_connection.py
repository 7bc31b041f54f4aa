"""Create a ``xero`` connection through Airflow's REST API exactly as the UI's connection form does.

Run as a script in an Airflow home whose metadata database is migrated (``AIRFLOW_HOME`` and the rest
of the environment of :class:`scripts.local_airflow.LocalAirflow`), with the simple auth manager letting
everyone in and ``AIRFLOW__CORE__TEST_CONNECTION=Enabled``::

    python tests/auth/ui_connection.py <conn_id> <sandbox url> <client id> <refresh token>

The client secret comes from ``XERO_UI_CLIENT_SECRET``. The script:

1. reads the form as the UI does (``GET /ui/connections/hook_meta``) and fills it in like an operator
   who leaves every default untouched: Client ID, Client Secret, the sandbox's URLs and a refresh token;
2. saves it (``POST /api/v2/connections``, the extra being the form's values as JSON, nulls included,
   which is what the UI sends);
3. opens it in the Edit form (``GET /api/v2/connections/<id>``, masked) and saves it unchanged
   (``PATCH``);
4. presses Test (``POST /api/v2/connections/test``).

It prints one JSON object with what each step returned (no secret: the API masks them).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def main(conn_id: str, url: str, client_id: str, refresh_token: str) -> dict[str, Any]:
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    report: dict[str, Any] = {}
    with TestClient(create_app("core")) as api:
        token = api.get("/auth/token")
        assert token.status_code in (200, 201), token.text
        api.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

        meta = api.get("/ui/connections/hook_meta")
        assert meta.status_code == 200, meta.text
        [form] = [m for m in meta.json() if m["connection_type"] == "xero"]
        fields = {name: spec.get("value") for name, spec in (form["extra_fields"] or {}).items()}
        report["form_defaults"] = fields
        report["standard_fields"] = form["standard_fields"]

        extra = dict(fields)  # what the operator types; every other field keeps its default
        extra.update(api_url=url, identity_url=url, refresh_token=refresh_token)
        body = {
            "connection_id": conn_id,
            "conn_type": "xero",
            "description": "",
            "host": "",
            "login": client_id,
            "password": os.environ["XERO_UI_CLIENT_SECRET"],
            "port": None,
            "schema": "",
            "extra": json.dumps(extra),
        }
        created = api.post("/api/v2/connections", json=body)
        report["create"] = {"status": created.status_code, "body": created.json()}

        shown = api.get(f"/api/v2/connections/{conn_id}")
        report["edit_form"] = shown.json()
        unchanged = {k: v for k, v in shown.json().items() if k in body and k != "connection_id"}
        saved = api.patch(f"/api/v2/connections/{conn_id}", json={"connection_id": conn_id, **unchanged})
        report["edit_save"] = {"status": saved.status_code}

        tested = api.post("/api/v2/connections/test", json=body)
        report["test"] = {"status": tested.status_code, **tested.json()}

    return report


if __name__ == "__main__":
    print("UI-CONNECTION-REPORT " + json.dumps(main(*sys.argv[1:5]), default=str))
