"""A task killed with SIGKILL mid-extract or mid-load loses nothing: the rerun converges to a clean sync.

The step runs in a child process (the pipeline function itself, as the operator would call it); the parent
kills it at a known point, then reruns the sync in-process like a user clearing the failed task.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.faults.conftest import SCHEMA, Harness, clean_checksum
from xero import pipeline
from xero_sandbox import Sandbox

REPO = Path(__file__).resolve().parents[2]

EXTRACT = """
import json, sys
from xero import pipeline
args = json.loads(sys.argv[1])
pipeline.extract(**args)
"""

LOAD = """
import json, pathlib, sys, time
from xero import pipeline
from xero.warehouse.loader import Warehouse
transformed, conn_id, schema, run_id, marker = json.loads(sys.argv[1])
original = Warehouse._store_quarantine
def store_then_hang(self, *args, **kwargs):
    result = original(self, *args, **kwargs)  # rows merged, quarantine stored: the commit is next
    pathlib.Path(marker).touch()
    time.sleep(120)
    return result
Warehouse._store_quarantine = store_then_hang
pipeline.load(transformed, conn_id, schema, run_id)
"""


def _spawn(code: str, payload: object) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)])}
    return subprocess.Popen(
        [sys.executable, "-c", code, json.dumps(payload)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _kill_when(process: subprocess.Popen[bytes], ready: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not ready.exists():
        assert process.poll() is None, "the step ended before it could be killed"
        assert time.monotonic() < deadline, "the step never reached the kill point"
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait(timeout=10) == -signal.SIGKILL


def test_kill_mid_extract(sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    harness = Harness(sb, tmp_path / "killed", monkeypatch, entities=["invoices"])
    [target] = pipeline.plan(harness.xero_conn_id, harness.warehouse_conn_id, SCHEMA, ["invoices"])
    sb.faults.script("Invoices", 2, "delay", seconds=4.0)  # page 2 hangs: the kill lands mid-read
    run_id = "killed_extract"
    child = _spawn(
        EXTRACT,
        {
            "xero_conn_id": harness.xero_conn_id,
            "tenant_id": target["tenant_id"],
            "entity": "invoices",
            "modified_since": None,
            "data_dir": str(harness.data_dir),
            "run_id": run_id,
        },
    )
    landing = pipeline.work_dir(harness.data_dir, run_id, target["tenant_id"], "invoices") / "landing"
    _kill_when(child, landing / "page-00001.json")
    assert [p.name for p in landing.iterdir()] == ["page-00001.json"]  # whole pages only, never a .tmp

    assert harness.sync_until_done() == []
    assert harness.checksum() == clean_checksum(sb, tmp_path / "reference", monkeypatch, ["invoices"])


def test_kill_mid_load(sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    harness = Harness(sb, tmp_path / "killed", monkeypatch, entities=["invoices"])
    [target] = pipeline.plan(harness.xero_conn_id, harness.warehouse_conn_id, SCHEMA, ["invoices"])
    run_id = "killed_load"
    transformed = pipeline.transform(harness.extract(target, run_id))
    marker = tmp_path / "inside-the-transaction"
    child = _spawn(LOAD, [transformed, harness.warehouse_conn_id, SCHEMA, run_id, str(marker)])
    _kill_when(child, marker)

    # Nothing of the killed transaction is visible: no rows, no watermark.
    assert harness.query(f"select count(*) from {SCHEMA}.invoice") == [(0,)]
    assert harness.query(f"select count(*) from {SCHEMA}._sync_state where watermark is not null") == [(0,)]

    assert harness.sync_until_done() == []
    assert harness.checksum() == clean_checksum(sb, tmp_path / "reference", monkeypatch, ["invoices"])
    assert harness.query(f"select count(*) from {SCHEMA}.invoice") == [
        (sb.count(target["tenant_id"], "invoices"),)
    ]
