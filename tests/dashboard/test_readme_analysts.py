"""The SQL of the README's "For analysts" section runs as printed on a demo warehouse and answers something.

DuckDB: on the read copy, read-only, as an analyst opens it. PostgreSQL: in the demo's own schema, which
stands in for ``xero``.
"""

from __future__ import annotations

import json
import re

import duckdb
import psycopg
import pytest

from tests.dashboard.conftest import REPO, DemoWarehouse
from xero.warehouse.publish import read_copy_path

pytestmark = pytest.mark.e2e


def analyst_queries() -> list[str]:
    """Return the ``sql`` blocks of the README's "For analysts" section."""
    readme = (REPO / "README.md").read_text()
    match = re.search(r"^## For analysts\n(.*?)(?=^## )", readme, re.S | re.M)
    assert match, "README.md has no 'For analysts' section"
    blocks = re.findall(r"```sql\n(.*?)```", match.group(1), re.S)
    return [re.sub(r"^ {3}", "", block, flags=re.M).strip().rstrip(";") for block in blocks]


def test_the_readme_has_three_questions() -> None:
    assert len(analyst_queries()) == 3


def test_the_readme_sql_answers_on_the_demo_warehouse(demo_warehouse: DemoWarehouse) -> None:
    env = demo_warehouse.env
    for sql in analyst_queries():
        if demo_warehouse.dialect == "duckdb":
            warehouse = json.loads(env["AIRFLOW_CONN_XERO_WAREHOUSE"])["host"]
            with duckdb.connect(str(read_copy_path(warehouse)), read_only=True) as conn:
                rows = conn.execute(sql).fetchall()
        else:
            schema = env["XERO_SCHEMA"]
            with psycopg.connect(env["AIRFLOW_CONN_XERO_WAREHOUSE"]) as conn:
                rows = conn.execute(re.sub(r"\bxero\.", f'"{schema}".', sql)).fetchall()
        assert rows, f"no rows for:\n{sql}"
