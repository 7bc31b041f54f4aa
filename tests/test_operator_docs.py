"""The README's settings table documents every ``XERO_*`` variable the code reads, with the code's defaults."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCES = ("dags", "plugins", "scripts")
NAME = re.compile(r"XERO_[A-Z0-9_]+")


def _code_settings() -> dict[str, set[str]]:
    """Return ``{variable: {literal defaults}}`` for every ``XERO_*`` name written in the code as a string.

    Every such string counts (``os.environ.get("XERO_X")``, a constant such as ``STATE_DIR_ENV = "XERO_X"``, an
    environment handed to a subprocess); a default is recorded when a call passes a literal one with the name.
    """
    settings: dict[str, set[str]] = {}
    for folder in SOURCES:
        for path in sorted((REPO / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Constant)
                    and isinstance(node.value, str)
                    and NAME.fullmatch(node.value)
                ):
                    settings.setdefault(node.value, set())
                if isinstance(node, ast.Call) and len(node.args) == 2:
                    name, default = node.args
                    if (
                        isinstance(name, ast.Constant)
                        and isinstance(name.value, str)
                        and NAME.fullmatch(name.value)
                        and isinstance(default, ast.Constant)
                    ):
                        settings.setdefault(name.value, set()).add(str(default.value))
    return settings


def _readme_table() -> dict[str, str]:
    """Return ``{variable: default cell}`` from the settings table of the README's "Operate" section."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("\n## Operate\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and (match := re.fullmatch(r"`(XERO_[A-Z0-9_]+)`", cells[0])):
            rows[match.group(1)] = cells[1]
    return rows


def test_the_scan_finds_the_settings_it_must() -> None:
    settings = _code_settings()
    assert {"XERO_MAX_BAD_SHARE", "XERO_SYNC_SCHEDULE", "XERO_GOVERNOR_DIR", "XERO_CONSENT_HOST"} <= set(
        settings
    )
    assert settings["XERO_TASK_RETRIES"] == {"2"}


def test_every_setting_the_code_reads_is_in_the_readme_table() -> None:
    documented = _readme_table()
    missing = sorted(set(_code_settings()) - set(documented))
    assert not missing, f"add these to the settings table of README.md, section Operate: {missing}"


def test_the_readme_table_gives_the_code_defaults() -> None:
    documented = _readme_table()
    for name, defaults in _code_settings().items():
        for default in defaults:
            assert f"`{default}`" in documented[name], f"{name}: the code's default is {default!r}"
