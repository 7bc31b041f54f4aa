"""The run's work folders: created afresh per task."""

from __future__ import annotations

from pathlib import Path

from xero import pipeline


def test_reset_dir_empties_the_folder(tmp_path: Path) -> None:
    target = tmp_path / "run" / "tenant" / "invoices"
    (target / "landing").mkdir(parents=True)
    (target / "landing" / "page-00001.json").write_text("[]")
    assert pipeline._reset_dir(target) == target
    assert list(target.iterdir()) == []
