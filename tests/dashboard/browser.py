"""Reading the dashboard back from a real browser page: tables by their container key, figures as numbers."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

CENT = Decimal("0.01")
TENTH = Decimal("0.1")

_READ_TABLE = """(key) => {
    const table = document.querySelector(`.st-key-${key} table`);
    const heads = [...table.querySelectorAll('thead th')].map((th) => th.innerText.trim());
    return [...table.querySelectorAll('tbody tr')].map((tr) => Object.fromEntries(
        [...tr.querySelectorAll('td')].map((td, i) => [heads[i], td.innerText.trim()])));
}"""

_IDLE = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    return app !== null && app.dataset.testScriptState === 'notRunning';
}"""


def open_page(page: Any, base_url: str, path: str, wait_for: str, **params: str) -> None:
    """Load ``/<path>?<params>`` and wait until ``wait_for`` (a CSS selector) is shown and the app is idle."""
    query = f"?{urlencode(params)}" if params else ""
    page.goto(f"{base_url}/{path}{query}")
    page.wait_for_selector(wait_for, timeout=60_000)
    page.wait_for_function(_IDLE, timeout=60_000)
    shown = page.inner_text("body")
    assert page.locator('[data-testid="stException"]').count() == 0, shown[:3000]
    assert page.get_by_role("dialog").count() == 0, shown[:3000]  # e.g. Streamlit's "Page not found"


def read_table(page: Any, key: str) -> list[dict[str, str]]:
    """Return the rows of the table in the container ``key`` as ``{header: shown text}``."""
    page.wait_for_selector(f".st-key-{key} table", timeout=60_000)
    return page.evaluate(_READ_TABLE, key)


def shown_amount(text: str) -> Decimal | None:
    """Parse an amount as the page shows it (``1,234.50``; ``–`` when unknown)."""
    return None if text == "–" else Decimal(text.replace(",", ""))


def cents(value: Any) -> Decimal | None:
    """Round an amount from SQL to cents, as a person reads it."""
    return None if value is None else Decimal(str(value)).quantize(CENT)


def tenths(value: Any) -> Decimal | None:
    """Round a number of days from SQL to one decimal."""
    return None if value is None else Decimal(str(value)).quantize(TENTH)
