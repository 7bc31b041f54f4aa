"""What the validate step tells: its log lines (and no Great Expectations chatter) and the Data Docs site."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.transform.conftest import TENANT, record
from xero import datadocs, pipeline
from xero.validate import XeroValidationFailed

REPO = Path(__file__).resolve().parents[2]
OTHER_TENANT = "9c0ffee0-1111-4222-8333-444455556666"


def extracted(
    data_dir: Path, run_id: str, entity: str, pages: list[list[dict[str, Any]]], **extra: Any
) -> dict:
    """Land ``pages`` where the extract step would and return its result."""
    tenant_id = extra.pop("tenant_id", TENANT)
    base = pipeline.work_dir(data_dir, run_id, tenant_id, entity)
    (base / "landing").mkdir(parents=True)
    for number, page in enumerate(pages, start=1):
        (base / "landing" / f"page-{number:05d}.json").write_text(json.dumps(page))
    return {
        "tenant_id": tenant_id,
        "tenant_name": extra.pop("tenant_name", "Demo Company (NZ)"),
        "entity": entity,
        "modified_since": None,
        "data_dir": str(data_dir),
        "run_id": run_id,
        "work_dir": str(base),
        "pages": len(pages),
        "records": sum(len(page) for page in pages),
        "api_calls": len(pages),
        **extra,
    }


class _Links(HTMLParser):
    """Collects every ``href``/``src`` and the text of the table cells of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.cells: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value or "" for name, value in attrs if name in ("href", "src", "action", "srcset")]
        if tag == "td":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.cells.append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


class TestLog:
    @pytest.fixture(autouse=True)
    def _pipeline_logs(self, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
        """Capture the step's logger directly: Airflow's logging set-up, run by earlier tests in the same
        process, may disable loggers or stop them propagating to the root logger."""
        logger = logging.getLogger("xero.pipeline")
        saved = (logger.disabled, logger.propagate, logger.level, logging.root.manager.disable)
        logging.disable(logging.NOTSET)
        logger.disabled, logger.propagate = False, False
        logger.setLevel(logging.INFO)  # also clears the loggers' cached levels
        logger.addHandler(caplog.handler)
        yield
        logger.removeHandler(caplog.handler)
        logger.disabled, logger.propagate = saved[0], saved[1]
        logger.setLevel(saved[2])
        logging.disable(saved[3])

    def test_validate_step_says_what_it_checked(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        pages = [
            [
                record("invoices", 1),
                record("invoices", 2, Status="FROZEN"),
                record("invoices", 3, Total="not a number"),
                record("invoices", 4),
            ]
        ]
        step = extracted(tmp_path, "scheduled__2026-12-03T10:00:00+00:00", "invoices", pages)
        with caplog.at_level(logging.INFO):
            result = pipeline.transform(step, max_bad_share=0.9)
        lines = [r.getMessage() for r in caplog.records if r.name == "xero.pipeline"]
        assert lines[0] == (
            "Validated invoices of Demo Company (NZ): 4 records checked, 2 kept, 2 quarantined "
            "(50.0%; the run fails above 90.0% and 10 records)"
        )
        assert lines[1] == "Rows kept per table: invoice 2, invoice_line_item 4"
        assert lines[2] == (
            "Quarantined by reason (1 did not parse, 1 failed an expectation): "
            "Total: expected a decimal number (1); expect_column_values_to_be_in_set(status) (1)"
        )
        assert lines[3] == "Warnings: none"
        page = tmp_path / "data_docs" / TENANT / "invoices" / "scheduled__2026-12-03T10_00_00_00_00.html"
        assert lines[4] == f"Data Docs: {page} (all runs: {tmp_path / 'data_docs' / 'index.html'})"
        assert result["validation"]["data_docs"] == str(page) and page.is_file()
        assert not [r for r in caplog.records if r.name.startswith("great_expectations")]

    def test_a_failed_validation_logs_its_figures_and_publishes_its_page(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        step = extracted(tmp_path, "manual__1", "contacts", [[record("contacts", 1, ContactStatus="GONE")]])
        with caplog.at_level(logging.INFO), pytest.raises(XeroValidationFailed):
            pipeline.transform(step, max_bad_share=0.05, max_bad_rows=0)
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert errors[0].startswith("Validated contacts of Demo Company (NZ): 1 records checked, 0 kept")
        assert "expect_column_values_to_be_in_set(contact_status) (1)" in errors[2]
        report = json.loads((tmp_path / "data_docs" / TENANT / "contacts" / "manual__1.json").read_text())
        assert report["status"] == "failed" and report["quarantined"] == 1

    def test_no_great_expectations_chatter_in_a_fresh_process(self, tmp_path: Path) -> None:
        """Great Expectations logs hundreds of INFO lines when imported: a fresh process shows what a task logs."""
        step = extracted(
            tmp_path, "manual__fresh", "payments", [[record("payments", n) for n in range(1, 4)]]
        )
        script = textwrap.dedent(
            f"""
            import json, logging, sys
            logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(name)s %(levelname)s %(message)s")
            from xero import pipeline
            pipeline.transform(json.loads({json.dumps(json.dumps(step))}))
            """
        )
        done = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            cwd=REPO,
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": f"{REPO}:{REPO / 'plugins'}"},
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        output = (done.stdout + done.stderr).splitlines()
        assert [line for line in output if not line.startswith("xero.pipeline INFO ")] == []
        assert len(output) == 5
        assert output[0].startswith(
            "xero.pipeline INFO Validated payments of Demo Company (NZ): 3 records checked, 3 kept, 0 quarantined"
        )


class TestSite:
    def test_index_lists_each_organisation_by_name_and_entity_and_no_page_reaches_another_host(
        self, tmp_path: Path
    ) -> None:
        organisations = {TENANT: "Demo Company (NZ)", OTHER_TENANT: "Kiwi Bakery <Ltd> & Co"}
        for tenant_id, name in organisations.items():
            for entity in ("accounts", "contacts", "invoices", "payments"):
                pages = [[record(entity, 1), record(entity, 2)]]
                step = extracted(tmp_path, "manual__a", entity, pages, tenant_id=tenant_id, tenant_name=name)
                pipeline.transform(step, max_bad_share=1.0)
        site = tmp_path / "data_docs"
        index = parse(site / "index.html")
        rows = {tuple(index.cells[i : i + 2]) for i in range(0, len(index.cells), 3)}
        assert rows == {
            (name, entity)
            for name in organisations.values()
            for entity in ("accounts", "contacts", "invoices", "payments")
        }
        html_files = sorted(site.rglob("*.html"))
        assert len(html_files) == 1 + 8
        for path in html_files:
            for url in parse(path).urls:
                parsed = urlparse(url)
                assert not parsed.scheme and not parsed.netloc, f"{path.name} links outside the site: {url}"
                assert (path.parent / parsed.path).resolve().is_file(), f"{path.name}: broken link {url}"
            text = path.read_text()
            assert "http://" not in text and "https://" not in text and "<script" not in text

    def test_a_report_page_shows_what_each_expectation_saw(self, tmp_path: Path) -> None:
        pages = [[record("payments", 1), record("payments", 2, Amount=-5), record("payments", 3)]]
        result = pipeline.transform(extracted(tmp_path, "manual__p", "payments", pages), max_bad_share=1.0)
        page = Path(result["validation"]["data_docs"])
        cells = parse(page).cells
        reasons = cells.index("expect_column_values_to_be_between(amount)")
        assert cells[reasons + 1] == "1"  # the quarantined records by reason
        checks = {tuple(cells[i + 1 : i + 5]) for i, cell in enumerate(cells) if cell == "payment"}
        assert ("expect_column_values_to_be_between(amount)", "error", "3", "1") in checks
        assert ("expect_column_values_to_not_be_null(payment_id)", "error", "3", "0") in checks
        report = json.loads(page.with_suffix(".json").read_text())
        assert report["status"] == "quarantined" and report["kept"] == 2

    def test_keeps_the_last_runs_per_organisation_and_entity(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv(datadocs.KEEP_RUNS_ENV, "3")
        site = tmp_path / "data_docs"
        for n in range(5):
            for tenant_id in (TENANT, OTHER_TENANT):
                datadocs.publish(site, _report(tenant_id, f"run{n}", f"2026-12-0{n + 1}T10:00:00+00:00"))
        for tenant_id in (TENANT, OTHER_TENANT):
            kept = sorted(p.name for p in (site / tenant_id / "accounts").iterdir())
            assert kept == [f"run{n}.{kind}" for n in (2, 3, 4) for kind in ("html", "json")] + ["runs.json"]
        index = parse(site / "index.html")
        assert sorted(url for url in index.urls) == sorted(
            f"{tenant_id}/accounts/run{n}.html" for tenant_id in (TENANT, OTHER_TENANT) for n in (2, 3, 4)
        )

    def test_default_and_invalid_run_counts(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv(datadocs.KEEP_RUNS_ENV, raising=False)
        assert datadocs.keep_runs() == 10
        monkeypatch.setenv(datadocs.KEEP_RUNS_ENV, "0")
        with pytest.raises(ValueError, match="XERO_DATA_DOCS_RUNS must be at least 1"):
            datadocs.keep_runs()
        monkeypatch.setenv(datadocs.KEEP_RUNS_ENV, "ten")
        with pytest.raises(ValueError, match="whole number"):
            datadocs.keep_runs()


def _report(tenant_id: str, run_id: str, validated_at: str) -> datadocs.Report:
    return datadocs.Report(
        tenant_id=tenant_id,
        tenant_name=f"Organisation {tenant_id[:4]}",
        entity="accounts",
        run_id=run_id,
        status="passed",
        records=1,
        kept=1,
        quarantined=0,
        quarantined_by_normalizer=0,
        quarantined_by_validator=0,
        duplicates_dropped=0,
        bad_share=0.0,
        max_bad_share=0.05,
        rows={"account": 1},
        reasons={},
        validated_at=validated_at,
    )
