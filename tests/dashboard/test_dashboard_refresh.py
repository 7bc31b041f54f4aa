"""The dashboard shows the next published read copy on the next page load, without a restart.

The sync replaces the read copy atomically (write beside, then rename); the dashboard opens a short read-only
connection per query and keys its cache on the copy's file, so a page loaded after a publish shows the new run.
"""

from __future__ import annotations

import json
import os
import shutil
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from tests.dashboard.conftest import REPO, DemoWarehouse
from xero.warehouse.publish import read_copy_path


def _net_revenue(app: object) -> dict[tuple[str, str], Decimal]:
    [table] = app.table  # type: ignore[attr-defined]
    return {
        (row["Month"], row["Currency"]): Decimal(row["Net revenue"].replace("\\", "").replace(",", ""))
        for _, row in table.value.iterrows()
    }


def test_a_new_read_copy_is_shown_on_the_next_load(
    demo_warehouse: DemoWarehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if demo_warehouse.dialect != "duckdb":
        pytest.skip("PostgreSQL readers query the warehouse itself; only DuckDB has a read copy")
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    demo_copy = read_copy_path(json.loads(demo_warehouse.env["AIRFLOW_CONN_XERO_WAREHOUSE"])["host"])
    warehouse = tmp_path / "wh.duckdb"
    published = read_copy_path(warehouse)
    shutil.copyfile(demo_copy, published)
    monkeypatch.setenv(
        "AIRFLOW_CONN_XERO_WAREHOUSE", json.dumps({"conn_type": "duckdb", "host": str(warehouse)})
    )
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow-home"))
    monkeypatch.delenv("XERO_SCHEMA", raising=False)
    monkeypatch.delenv("XERO_WAREHOUSE_CONN_ID", raising=False)
    st.cache_resource.clear()
    st.cache_data.clear()

    app = AppTest.from_file(str(REPO / "dashboard" / "app.py"), default_timeout=120).run()
    assert not app.exception
    before = _net_revenue(app)
    assert before

    # The next run publishes: a new file is written beside the copy, then renamed over it.
    staged = tmp_path / "wh.read.duckdb.tmp"
    shutil.copyfile(published, staged)
    with duckdb.connect(str(staged)) as conn:
        conn.execute(
            "update xero.invoice_line_item set line_amount = line_amount * 2, tax_amount = tax_amount * 2"
        )
    os.replace(staged, published)

    after = _net_revenue(app.run())
    assert not app.exception
    assert after.keys() == before.keys()
    assert all(after[key] == 2 * before[key] for key in before)
    assert any(before.values())
