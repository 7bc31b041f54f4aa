"""``bench/transform_bench.py`` at a tiny scale: both steps run and the spoiled invoices are quarantined.

No timing is asserted (the machine decides those); only that the benchmark runs and counts what it should.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import transform_bench


def test_both_steps_run_and_spoiled_invoices_are_quarantined(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Invoices 9 and 29 get a bad date (the normaliser's quarantine), 19 and 39 a bad status (the validator's).
    assert transform_bench.main(["--n", "40", "--bad-every", "10", "--dir", str(tmp_path)]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "40 records" in lines["normalize"] and "quarantined 2" in lines["normalize"]
    assert "40 records" in lines["validate"] and "quarantined 4" in lines["validate"]
    assert "records/s" in lines["together"]
