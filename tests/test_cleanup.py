"""The runs' work folders: removed by the DAG's teardown once the run is done, and when abandoned by a killed run."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

import pytest

from xero import cleanup, pipeline

HOUR = 3600.0
NOW = time.time()


def make_run(data_dir: Path, run_id: str, hours_ago: float, *, mark: bool = True) -> Path:
    """Leave a run's work folder as the extract and validate steps do, last written ``hours_ago``."""
    if mark:
        cleanup.mark_run_dir(data_dir, run_id)
    base = pipeline.work_dir(data_dir, run_id, "tenant-1", "invoices")
    for part in ("landing", "normalized", "validated"):
        (base / part).mkdir(parents=True)
        (base / part / "data").write_bytes(b"x" * 1000)
    folder = data_dir / pipeline._safe(run_id)
    stamp = NOW - hours_ago * HOUR
    for root, dirs, files in os.walk(folder):
        for name in (*dirs, *files):
            os.utime(os.path.join(root, name), (stamp, stamp))
    os.utime(folder, (stamp, stamp))
    return folder


def states(**by_run: str):
    return lambda run_id: by_run.get(run_id, "success")


def test_removes_this_runs_folder_and_a_killed_runs_old_folder(tmp_path: Path) -> None:
    this = make_run(tmp_path, "scheduled__2026-12-03T10:00:00+00:00", hours_ago=0)
    killed = make_run(tmp_path, "scheduled__2026-12-01T10:00:00+00:00", hours_ago=49)
    result = cleanup.clean_up(
        tmp_path,
        "scheduled__2026-12-03T10:00:00+00:00",
        states(**{"scheduled__2026-12-01T10:00:00+00:00": "failed"}),
        max_age=timedelta(hours=24),
        now=NOW,
    )
    assert not this.exists() and not killed.exists()
    assert set(result.removed) == {this.name, killed.name}
    assert result.freed_bytes == 6000 + len('{"run_id": "scheduled__2026-12-03T10:00:00+00:00"}') + len(
        '{"run_id": "scheduled__2026-12-01T10:00:00+00:00"}'
    )


def test_keeps_an_old_folder_whose_run_is_still_running(tmp_path: Path) -> None:
    running = make_run(tmp_path, "manual__long", hours_ago=30)
    result = cleanup.clean_up(
        tmp_path, "manual__now", states(manual__long="running"), max_age=timedelta(hours=24), now=NOW
    )
    assert running.is_dir()
    assert result.kept == {"manual__long": "its run manual__long is running"}


def test_keeps_a_fresh_folder_of_a_finished_or_unknown_run(tmp_path: Path) -> None:
    fresh = make_run(tmp_path, "manual__fresh", hours_ago=2)
    unmarked = make_run(tmp_path, "manual__unmarked", hours_ago=23, mark=False)
    result = cleanup.clean_up(tmp_path, "manual__now", states(), max_age=timedelta(hours=24), now=NOW)
    assert fresh.is_dir() and unmarked.is_dir()
    assert set(result.kept) == {"manual__fresh", "manual__unmarked"}
    assert result.removed == {}


def test_an_old_folder_without_owner_or_state_goes_by_age(tmp_path: Path) -> None:
    unmarked = make_run(tmp_path, "manual__old", hours_ago=25, mark=False)
    unknown = make_run(tmp_path, "manual__gone", hours_ago=25)

    def gone(run_id: str) -> str:
        raise LookupError(f"DagRun {run_id} not found")

    result = cleanup.clean_up(tmp_path, "manual__now", gone, max_age=timedelta(hours=24), now=NOW)
    assert not unmarked.exists() and not unknown.exists()
    assert set(result.removed) == {"manual__old", "manual__gone"}


def test_a_recent_file_keeps_a_folder_fresh(tmp_path: Path) -> None:
    folder = make_run(tmp_path, "manual__busy", hours_ago=40)
    page = folder / "tenant-1" / "invoices" / "landing" / "page-00002.json"
    page.write_text("[]")  # written now, by a task of a run whose state cannot be read
    result = cleanup.clean_up(tmp_path, "manual__now", None, max_age=timedelta(hours=24), now=NOW + 60)
    assert folder.is_dir() and "manual__busy" in result.kept


def test_leaves_data_docs_governor_and_foreign_folders_alone(tmp_path: Path) -> None:
    for name in ("data_docs/tenant/invoices", "_governor", "exports/2025"):
        (tmp_path / name).mkdir(parents=True)
        (tmp_path / name / "file").write_text("keep")
        old = NOW - 100 * HOUR
        os.utime(tmp_path / name / "file", (old, old))
        os.utime(tmp_path / name, (old, old))
    result = cleanup.clean_up(tmp_path, "manual__now", None, max_age=timedelta(hours=1), now=NOW)
    assert result.removed == {} and result.kept == {}
    assert all(
        (tmp_path / name / "file").is_file()
        for name in ("data_docs/tenant/invoices", "_governor", "exports/2025")
    )


def test_retention_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cleanup.RETENTION_ENV, raising=False)
    assert cleanup.retention() == timedelta(hours=24)
    monkeypatch.setenv(cleanup.RETENTION_ENV, "1.5")
    assert cleanup.retention() == timedelta(hours=1.5)
    for bad in ("a day", "-1", "nan"):
        monkeypatch.setenv(cleanup.RETENTION_ENV, bad)
        with pytest.raises(ValueError, match="XERO_WORK_RETENTION_HOURS"):
            cleanup.retention()


def test_retention_from_the_environment_applies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = make_run(tmp_path, "manual__old", hours_ago=3)
    monkeypatch.setenv(cleanup.RETENTION_ENV, "2")
    cleanup.clean_up(tmp_path, "manual__now", states(), now=NOW)
    assert not folder.exists()


def test_a_step_after_the_clean_up_says_what_to_rerun(tmp_path: Path) -> None:
    extracted = {
        "tenant_id": "tenant-1",
        "tenant_name": "Demo",
        "entity": "invoices",
        "data_dir": str(tmp_path),
        "run_id": "manual__1",
        "work_dir": str(pipeline.work_dir(tmp_path, "manual__1", "tenant-1", "invoices")),
    }
    with pytest.raises(FileNotFoundError, match="clear the extract task"):
        pipeline.transform(extracted)


def test_the_dag_cleans_up_in_a_teardown_after_everything() -> None:
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(Path(__file__).resolve().parent.parent / "dags")).dags["xero_sync"]
    task = dag.task_dict["clean_up"]
    assert task.is_teardown
    assert task.downstream_task_ids == set()
    everything_else = set(dag.task_dict) - {"clean_up"}
    assert everything_else <= {
        t for t in dag.task_dict if "clean_up" in dag.task_dict[t].get_flat_relative_ids()
    }
