"""Fixtures of the sandbox tests: an in-process client and authorised headers."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

with warnings.catch_warnings():  # starlette nudges towards httpx2; httpx is what is installed
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from xero_sandbox import Sandbox, SandboxConfig

START = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
ALL_READ = ["accounting.settings.read", "accounting.contacts.read", "accounting.transactions.read"]


def small_config(**overrides: Any) -> SandboxConfig:
    """Return a small config on a frozen clock."""
    base: dict[str, Any] = dict(
        seed=7, tenants=2, accounts=30, contacts=40, invoices=250, clock_start=START, frozen_clock=True
    )
    base.update(overrides)
    return SandboxConfig(**base)


@pytest.fixture
def sb() -> Sandbox:
    """Return a small sandbox on a frozen clock (not served)."""
    return Sandbox(small_config())


@pytest.fixture
def client(sb: Sandbox) -> Iterator[TestClient]:
    """Return an in-process HTTP client of ``sb``."""
    with TestClient(sb.app, follow_redirects=False) as test_client:
        yield test_client


def token_pair(client: TestClient, refresh_token: str) -> dict[str, Any]:
    """Refresh ``refresh_token`` and return the token response."""
    response = client.post(
        "/connect/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=("sandbox-client", "sandbox-secret"),
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def headers(sb: Sandbox, client: TestClient) -> Callable[..., dict[str, str]]:
    """Return a factory of accounting headers: ``headers(tenant_index=0, scopes=ALL_READ)``."""

    def make(tenant_index: int = 0, scopes: list[str] | None = None) -> dict[str, str]:
        pair = token_pair(client, sb.issue_refresh_token(scopes or ALL_READ))
        return {
            "Authorization": f"Bearer {pair['access_token']}",
            "xero-tenant-id": sb.tenants[tenant_index].tenant_id,
            "Accept": "application/json",
        }

    return make


def custom_connection_headers(client: TestClient, sandbox: Sandbox, tenant_index: int = 0) -> dict[str, str]:
    """Return accounting headers from a client_credentials (Custom Connection) token."""
    response = client.post(
        "/connect/token", data={"grant_type": "client_credentials"}, auth=("sandbox-client", "sandbox-secret")
    )
    return {
        "Authorization": f"Bearer {response.json()['access_token']}",
        "xero-tenant-id": sandbox.tenants[tenant_index].tenant_id,
    }
