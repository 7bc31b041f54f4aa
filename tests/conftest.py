"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from xero_sandbox import Sandbox, SandboxConfig


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """Serve a small seeded sandbox (2 tenants) on a free 127.0.0.1 port for one test; ``sandbox.url`` is set."""
    sb = Sandbox(SandboxConfig(seed=7, tenants=2, accounts=30, contacts=40, invoices=250))
    with sb.serve():
        yield sb
