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
    assert set(dag.task_dict) >= {
        "plan",
        "sync.extract",
        "sync.validate",
        "sync.load",
        "marts",
        "summary",
        "clean_up",
    }
    assert dag.task_dict["sync.extract"].upstream_task_ids == {"plan"}
    assert dag.task_dict["sync.validate"].upstream_task_ids == {"sync.extract"}
    assert dag.task_dict["sync.load"].upstream_task_ids == {"sync.validate"}
    assert dag.task_dict["marts"].upstream_task_ids == {"sync.load"}
    assert "marts" in dag.task_dict["summary"].upstream_task_ids
    assert dag.max_active_runs == 1
    assert dag.catchup is False


def test_each_tenant_entity_is_a_chain_of_its_own(dag) -> None:
    """extract → validate → load are mapped together (a mapped task group), so load[i] waits for validate[i]
    only, and a failed chain leaves the others running; marts and the summary run whatever happened."""
    from airflow.sdk.definitions.taskgroup import MappedTaskGroup

    group = dag.task_group_dict["sync"]
    assert isinstance(group, MappedTaskGroup)
    assert {task.task_id for task in group} == {"sync.extract", "sync.validate", "sync.load"}
    for task_id in ("sync.extract", "sync.validate", "sync.load"):
        assert dag.task_dict[task_id].trigger_rule == "all_success"
    assert dag.task_dict["marts"].trigger_rule == "all_done"
    assert dag.task_dict["summary"].trigger_rule == "all_done"
    assert dag.task_dict["summary"].retries == 0


def test_params_have_titles_and_descriptions(dag) -> None:
    for name, param in dag.params.items():
        assert param.schema.get("title"), name
        assert len(param.description or "") > 20, name
    assert dag.params["max_bad_share"] == 0.05
    assert dag.params["max_bad_rows"] == 10


def test_thresholds_come_from_the_environment() -> None:
    code = "import runpy, sys; d = runpy.run_path(sys.argv[1])['xero_sync'](); print(d.params['max_bad_rows'], d.params['max_bad_share'])"
    result = subprocess.run(
        [sys.executable, "-c", code, str(REPO / "dags" / "xero_sync.py")],
        capture_output=True,
        text=True,
        check=True,
        env={
            "PYTHONPATH": str(REPO / "plugins"),
            "PATH": "/usr/bin:/bin",
            "XERO_MAX_BAD_ROWS": "3",
            "XERO_MAX_BAD_SHARE": "0.2",
        },
    )
    assert result.stdout.strip().splitlines()[-1] == "3 0.2"


def test_warehouse_writers_share_one_pool(dag) -> None:
    for task_id in ("plan", "sync.load", "marts"):
        assert dag.task_dict[task_id].pool == "xero_warehouse"
    assert dag.task_dict["sync.extract"].pool != "xero_warehouse"


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
