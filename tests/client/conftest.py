"""Fixtures of the client tests: clients that never really wait, a token provider stub."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import tenacity

from tests.client.fakes import API, StaticTokens
from xero.client import XeroClient, build_retrying


@pytest.fixture
def tokens() -> StaticTokens:
    return StaticTokens()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_client(tokens: StaticTokens, sleeps: list[float]) -> Callable[..., XeroClient]:
    """Build a client whose retries and pacing never really wait (sleeps are recorded)."""

    def build(**kwargs: Any) -> XeroClient:
        retry = kwargs.pop("retry", {})
        options: dict[str, Any] = {
            "api_url": API,
            "tokens": tokens,
            "retrying": build_retrying(wait=tenacity.wait_none(), sleep=sleeps.append, **retry),
            "sleep": sleeps.append,
            "clock": lambda: 1_700_000_000.0,
        }
        options.update(kwargs)
        return XeroClient(**options)

    return build
