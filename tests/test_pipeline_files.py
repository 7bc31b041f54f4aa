"""The run's work folders: created afresh per task, removed once the loads commit."""

from __future__ import annotations

from pathlib import Path

import pytest

from xero import pipeline


def test_reset_dir_empties_the_folder(tmp_path: Path) -> None:
    target = tmp_path / "run" / "tenant" / "invoices"
    (target / "landing").mkdir(parents=True)
    (target / "landing" / "page-00001.json").write_text("[]")
    assert pipeline._reset_dir(target) == target
    assert list(target.iterdir()) == []


def test_reset_dir_survives_a_load_removing_the_run_folder_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "run" / "tenant" / "invoices"
    real_mkdir = Path.mkdir
    attempts: list[Path] = []

    def mkdir(self: Path, *args: object, **kwargs: object) -> None:
        attempts.append(self)
        if len(attempts) == 1:  # the empty run folder was just removed by another task's load
            raise FileNotFoundError(str(self))
        real_mkdir(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "mkdir", mkdir)
    assert pipeline._reset_dir(target) == target
    assert target.is_dir() and attempts[0] == target
