"""The Streamlit app: the organisation picker, the pages and the "no data yet" page.

Run it with ``python -m dashboard`` (``make dashboard``). Every query opens a short read-only connection, so a
sync is never blocked and a new read copy is picked up on the next page load; results are cached until the
read copy changes (DuckDB) or for a minute (PostgreSQL). Nothing the warehouse answers ends in a stack
trace: a missing or empty warehouse shows how to fill it, any other failure a one-line reason.
"""

from __future__ import annotations

import logging
import sys
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # ``streamlit run dashboard/app.py`` puts only dashboard/ on the path
    sys.path.insert(0, str(REPO))

import pandas as pd  # noqa: E402
import sqlalchemy as sa  # noqa: E402
import streamlit as st  # noqa: E402

from dashboard import views  # noqa: E402
from dashboard.queries import fetch  # noqa: E402
from dashboard.source import (  # noqa: E402
    RUN_THE_SYNC,
    Source,
    WarehouseUnavailable,
    WarehouseUnreachable,
    resolve_source,
)

log = logging.getLogger("dashboard")

#: url path, title and renderer of each page; the first is also the app's home page (``/``).
PAGES: list[tuple[str, str, Callable[[views.PageContext], None]]] = [
    ("revenue", "Revenue by month", views.revenue_page),
    ("cash", "Cash in and out", views.cash_page),
    ("aging", "AR and AP aging", views.aging_page),
    ("top-customers", "Top customers", views.top_customers_page),
    ("dso", "Days sales outstanding", views.dso_page),
    ("freshness", "Data freshness", views.freshness_page),
    ("quarantine", "Quarantine", views.quarantine_page),
]


@st.cache_resource(show_spinner=False)
def _source() -> Source:
    return resolve_source()


@st.cache_data(ttl=60, show_spinner=False, max_entries=256)
def _load(source: Source, version: int, name: str, params: tuple[tuple[str, Any], ...]) -> pd.DataFrame:
    """Run a named query; ``version`` keys the cache on the read copy, so a new one is read at once."""
    with source.connect() as connection:
        return fetch(connection, name, dict(params))


def load(source: Source, name: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Return the rows of the named query (a copy: pages may add columns)."""
    return _load(source, source.version(), name, tuple(sorted((params or {}).items()))).copy()


def no_data_page(problem: WarehouseUnavailable, source: Source | None) -> None:
    """Say there is nothing to show yet (or the warehouse cannot be reached) and how to fix it."""
    st.title(problem.title)
    if isinstance(problem, WarehouseUnreachable):
        st.error(
            f"{views.literal(str(problem))} Check the Airflow connection of the warehouse, then reload this page."
        )
    else:
        st.info(f"No data yet: {RUN_THE_SYNC}, then reload this page.")
        st.write(views.literal(str(problem)))
    if source is not None:
        st.caption(views.literal(f"The dashboard reads {source.description}, schema {source.schema!r}."))


def _reason(error: BaseException) -> str:
    orig = getattr(error, "orig", None) or error
    lines = str(orig).strip().splitlines()
    return lines[0] if lines else type(orig).__name__


def _organisations(source: Source) -> list[views.Organisation]:
    """Return the organisations with data.

    :raises WarehouseUnavailable: when there are none yet, or no marts.
    """
    try:
        rows = load(source, "organisations")
        freshness = load(source, "data_freshness")
    except sa.exc.DBAPIError as exc:
        raise WarehouseUnavailable(f"No marts in {source.description} yet ({_reason(exc)}).") from None
    if rows.empty or freshness.empty:
        raise WarehouseUnavailable(f"No synced organisation in {source.description} yet.")
    return [
        views.Organisation(str(row.tenant_id), str(row.tenant_name), row.base_currency or None)
        for row in rows.itertuples()
    ]


def picker_labels(organisations: list[views.Organisation]) -> dict[str, views.Organisation]:
    """Label each organisation by its name (the ``?org=`` URL parameter), adding the tenant id to clashes."""
    names = Counter(organisation.name for organisation in organisations)
    return {(o.name if names[o.name] == 1 else f"{o.name} ({o.tenant_id})"): o for o in organisations}


def _page(
    source: Source, organisation: views.Organisation, render: Callable[[views.PageContext], None]
) -> Callable[[], None]:
    """Return the page function Streamlit runs: ``render`` for ``organisation``, failures explained."""

    def run() -> None:
        context = views.PageContext(organisation, lambda name, params: load(source, name, params))
        try:
            render(context)
        except WarehouseUnavailable as exc:
            no_data_page(exc, source)
        except Exception as exc:
            log.exception("the page could not be read")
            st.error(views.literal(f"This page could not be read from the warehouse: {_reason(exc)}"))

    run.__name__ = render.__name__
    return run


def main() -> None:
    """Render the app."""
    st.set_page_config(page_title="Xero dashboard", page_icon=":bar_chart:", layout="wide")
    try:
        source = _source()
    except WarehouseUnavailable as exc:
        no_data_page(exc, None)
        return
    try:
        organisations = _organisations(source)
    except WarehouseUnavailable as exc:
        no_data_page(exc, source)
        return
    by_label = picker_labels(organisations)
    with st.sidebar:
        label = st.selectbox("Organisation", list(by_label), key="org", bind="query-params")
        organisation = by_label[label]
        if organisation.base_currency:
            st.caption(f"Base currency: {organisation.base_currency}")
        st.caption(views.literal(f"Reading {source.description}"))
    pages = [
        st.Page(_page(source, organisation, render), title=title, url_path=path, default=index == 0)
        for index, (path, title, render) in enumerate(PAGES)
    ]
    st.navigation(pages).run()


main()
