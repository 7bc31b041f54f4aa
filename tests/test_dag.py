"""The DAG file: imports cleanly, has the intended shape, and stays light at parse time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
HEAVY_MODULES = ("great_expectations", "pandas", "pyarrow", "duckdb", "requests_oauthlib", "xero.hooks")


@pytest.fixture(scope="module")
def dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    return bag.dags["xero_sync"]


def test_tasks_and_order(dag) -> None:
    assert set(dag.task_dict) == {"plan", "extract", "validate", "load", "marts", "summary", "clean_up"}
    assert dag.task_dict["extract"].upstream_task_ids == {"plan"}
    assert dag.task_dict["validate"].upstream_task_ids == {"extract"}
    assert dag.task_dict["load"].upstream_task_ids == {"validate"}
    assert dag.task_dict["marts"].upstream_task_ids == {"load"}
    assert dag.max_active_runs == 1
    assert dag.catchup is False


def test_warehouse_writers_share_one_pool(dag) -> None:
    for task_id in ("plan", "load", "marts"):
        assert dag.task_dict[task_id].pool == "xero_warehouse"
    assert dag.task_dict["extract"].pool != "xero_warehouse"


def test_marts_emit_an_asset(dag) -> None:
    assert [asset.name for asset in dag.task_dict["marts"].outlets] == ["xero_marts"]


def test_parsing_imports_nothing_heavy() -> None:
    code = (
        "import json, sys, runpy; runpy.run_path(sys.argv[1]);"
        f"print(json.dumps([m for m in {HEAVY_MODULES!r} if m in sys.modules]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(REPO / "dags" / "xero_sync.py")],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(REPO / "plugins"), "PATH": "/usr/bin:/bin"},
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
