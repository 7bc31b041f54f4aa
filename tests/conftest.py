"""Shared pytest fixtures: the local Xero sandbox and the PostgreSQL server.

Tests that need PostgreSQL skip with the reason when the server cannot be reached, and fail instead when
``REQUIRE_POSTGRES=1`` (as in CI), so they can never pass silently.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from xero_sandbox import Sandbox, SandboxConfig

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """Serve a small seeded sandbox (2 tenants) on a free 127.0.0.1 port for one test; ``sandbox.url`` is set."""
    sb = Sandbox(SandboxConfig(seed=7, tenants=2, accounts=30, contacts=40, invoices=250))
    with sb.serve():
        yield sb


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """Return the URL of a reachable PostgreSQL server (``XERO_TEST_POSTGRES_URL`` or the local default)."""
    import psycopg

    url = os.environ.get("XERO_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        reason = f"PostgreSQL not reachable at {url.rsplit('@', 1)[-1]}: {type(exc).__name__}"
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{reason} (REQUIRE_POSTGRES=1)")
        pytest.skip(reason)
    return url


@pytest.fixture
def pg_schema(postgres_url: str) -> Iterator[str]:
    """Return a fresh schema name for this test; the schema is dropped afterwards."""
    import psycopg

    schema = f"test_xero_{uuid.uuid4().hex[:12]}"
    yield schema
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
