"""Fixtures of the auth tests: a served sandbox with a frozen clock and a Xero connection pointing at it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from xero_sandbox import Sandbox, SandboxConfig, airflow_connection

START = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    """Serve a small sandbox (2 tenants, no refresh grace: a spent refresh token is refused at once) for one test."""
    sandbox = Sandbox(
        SandboxConfig(
            seed=5,
            tenants=2,
            accounts=10,
            contacts=30,
            invoices=60,
            clock_start=START,
            refresh_grace_seconds=0,
        ).without_limits()
    )
    with sandbox.serve():
        yield sandbox


@pytest.fixture
def set_connection(
    monkeypatch: pytest.MonkeyPatch, sb: Sandbox, tmp_path: Path
) -> Callable[..., dict[str, Any]]:
    """Define Xero connection ``conn_id`` on the sandbox (file token store in ``tmp_path``); return its extra."""

    def define(conn_id: str = "xero_default", **extra: Any) -> dict[str, Any]:
        connection = airflow_connection(
            sb.url,
            client_id=sb.config.client_id,
            client_secret=sb.config.client_secret,
            token_file=tmp_path / (conn_id + ".json"),
            authorize=True,
            **{k: v for k, v in extra.items() if v is not None},
        )
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))
        return connection["extra"]

    return define
