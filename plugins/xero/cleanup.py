"""Removing the runs' work folders: this run's once it is done, and those that earlier runs left behind.

Each run keeps its files in ``<data_dir>/<run>/<tenant>/<entity>/`` (landing pages, typed Parquet, validated
tables; about 4 KB an invoice). The DAG's teardown task (:func:`clean_up`) removes them when the run's tasks are
done, whatever their state, and also removes what earlier runs left behind (a killed worker, a run that failed
and was never cleared): a folder no running task owns, older than a limit (``XERO_WORK_RETENTION_HOURS``, default
24 h). A folder is kept when:

* the run that wrote it (named in its ``run.json``, written when the run's first extract starts) is still queued
  or running, or
* anything in it was written more recently than the limit (a run of another deployment sharing the folder, or a
  run whose state cannot be read).

Only folders laid out as work folders are touched: the Data Docs site (``data_docs``), the rate governor's state
(``_governor``) and anything else in the data directory stay.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_RETENTION_HOURS",
    "RETENTION_ENV",
    "CleanupResult",
    "clean_up",
    "mark_run_dir",
    "retention",
]

#: Hours after which an abandoned work folder is removed when ``XERO_WORK_RETENTION_HOURS`` is not set.
DEFAULT_RETENTION_HOURS = 24.0
#: Environment variable overriding :data:`DEFAULT_RETENTION_HOURS`.
RETENTION_ENV = "XERO_WORK_RETENTION_HOURS"
#: The file naming the run that owns a work folder.
OWNER_FILE = "run.json"
#: Dag run states in which a run still owns its folder.
ACTIVE_STATES = frozenset({"queued", "running"})
#: Sub-folders of ``<run>/<tenant>/<entity>/`` that make a folder a work folder.
_WORK_PARTS = ("landing", "normalized", "validated")


def retention() -> timedelta:
    """Return how old an abandoned work folder must be to be removed (``XERO_WORK_RETENTION_HOURS``, default 24)."""
    raw = os.environ.get(RETENTION_ENV, "").strip()
    if not raw:
        return timedelta(hours=DEFAULT_RETENTION_HOURS)
    try:
        hours = float(raw)
    except ValueError:
        raise ValueError(f"{RETENTION_ENV} must be a number of hours (e.g. 24 or 0.5), got {raw!r}") from None
    if not hours >= 0:
        raise ValueError(f"{RETENTION_ENV} must be 0 or more hours, got {raw!r}")
    return timedelta(hours=hours)


def _folder_name(run_id: str) -> str:
    from xero.pipeline import _safe

    return _safe(run_id)


def mark_run_dir(data_dir: str | Path, run_id: str) -> Path:
    """Record in ``<data_dir>/<run>/run.json`` which run owns the folder (once; later calls keep it); return it."""
    folder = Path(data_dir) / _folder_name(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    owner = folder / OWNER_FILE
    if not owner.exists():
        tmp = folder / f".{OWNER_FILE}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps({"run_id": run_id}), encoding="utf-8")
        os.replace(tmp, owner)
    return folder


@dataclass
class CleanupResult:
    """What :func:`clean_up` did: folders removed (with their size) and kept (with the reason)."""

    removed: dict[str, int] = field(default_factory=dict)
    kept: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def freed_bytes(self) -> int:
        return sum(self.removed.values())

    def as_dict(self) -> dict[str, object]:
        """Return the result for XCom."""
        return {
            "removed": self.removed,
            "kept": self.kept,
            "failed": self.failed,
            "freed_bytes": self.freed_bytes,
        }


def clean_up(
    data_dir: str | Path,
    run_id: str,
    run_state: Callable[[str], str | None] | None = None,
    *,
    max_age: timedelta | None = None,
    now: float | None = None,
) -> CleanupResult:
    """Remove this run's work folder and those of earlier runs that no running task owns, older than ``max_age``.

    :param data_dir: the data directory holding the runs' folders.
    :param run_id: the run that is ending; its folder is removed whatever its age.
    :param run_state: returns the state of a run (``"running"``, ``"failed"``…, ``None`` when unknown); a folder
        whose run is queued or running is kept. Without it only the age decides.
    :param max_age: how long an abandoned folder is kept (default :func:`retention`).
    :param now: the current time (seconds since the epoch), for tests.
    """
    data_dir = Path(data_dir)
    limit = (max_age if max_age is not None else retention()).total_seconds()
    now = time.time() if now is None else now
    result = CleanupResult()
    own = _folder_name(run_id)
    for folder in _work_folders(data_dir):
        if folder.name == own:
            _remove(folder, result, "this run's work folder")
            continue
        owner = _owner(folder)
        state = _state(run_state, owner) if owner else None
        if state in ACTIVE_STATES:
            result.kept[folder.name] = f"its run {owner} is {state}"
            continue
        age = now - _newest_mtime(folder)
        if age < limit:
            result.kept[folder.name] = f"written {_hours(age)} ago, within the {_hours(limit)} limit"
            continue
        why = f"run {owner} is {state}" if state else "no running task owns it"
        _remove(
            folder, result, f"the work folder left by an earlier run ({why}, last written {_hours(age)} ago)"
        )
    for name, reason in result.kept.items():
        log.info("Kept the work folder %s: %s", data_dir / name, reason)
    log.info(
        "Work folders: %d removed (%s freed), %d kept, %d could not be removed",
        len(result.removed),
        _size(result.freed_bytes),
        len(result.kept),
        len(result.failed),
    )
    return result


def _work_folders(data_dir: Path) -> Iterator[Path]:
    """Yield the run folders of ``data_dir``: those with a ``run.json`` or laid out as work folders, or empty."""
    if not data_dir.is_dir():
        return
    for folder in sorted(data_dir.iterdir()):
        if not folder.is_dir() or folder.is_symlink() or folder.name.startswith(("_", ".")):
            continue
        if folder.name != "data_docs" and _is_work_folder(folder):
            yield folder


def _is_work_folder(folder: Path) -> bool:
    if (folder / OWNER_FILE).is_file() or not any(folder.iterdir()):
        return True
    return any(part.is_dir() for name in _WORK_PARTS for part in folder.glob(f"*/*/{name}"))


def _owner(folder: Path) -> str | None:
    try:
        return str(json.loads((folder / OWNER_FILE).read_text(encoding="utf-8"))["run_id"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _state(run_state: Callable[[str], str | None] | None, run_id: str) -> str | None:
    if run_state is None:
        return None
    try:
        state = run_state(run_id)
    except Exception as exc:  # a run that was deleted, or an API that cannot answer: the age decides
        log.debug("Could not read the state of run %s: %s", run_id, exc)
        return None
    return str(getattr(state, "value", state)) if state is not None else None


def _newest_mtime(folder: Path) -> float:
    newest = folder.stat().st_mtime
    for root, dirs, files in os.walk(folder):
        for name in (*dirs, *files):
            try:
                newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
            except FileNotFoundError:
                continue
    return newest


def _tree_size(folder: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                continue
    return total


def _remove(folder: Path, result: CleanupResult, what: str) -> None:
    size = _tree_size(folder)
    try:
        shutil.rmtree(folder)
    except OSError as exc:
        result.failed[folder.name] = str(exc)
        log.warning("Could not remove %s %s: %s", what, folder, exc)
        return
    result.removed[folder.name] = size
    log.info("Removed %s %s (%s)", what, folder, _size(size))


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


def _size(count: int) -> str:
    return f"{count / 1_000_000:,.1f} MB"
