"""The extract step over the client: landing files hold each page's records exactly as Xero sent them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import tenacity
from airflow.sdk import Connection

from tests.client.fakes import API, CLIENT_ID, CLIENT_SECRET, IDENTITY, TENANT, TOKEN_URL
from xero import pipeline

URL = f"{API}/api.xro/2.0/Invoices"
#: Money a float cannot hold and spacing json.dumps would not write: landing must keep both as sent.
PAGE_1 = (
    '[{"InvoiceID": "a", "UpdatedDateUTC": "/Date(1700000000000+0000)/", "Total": 1234.5678901234567890},'
    ' {"InvoiceID": "b", "UpdatedDateUTC": "/Date(1700000001000+0000)/", "Total": 0.10}]'
)
PAGE_2 = '[{"InvoiceID": "c", "UpdatedDateUTC": "/Date(1700000002000+0000)/", "Total": 1e2}]'


def _connection(monkeypatch, tmp_path: Path) -> None:
    extra = {
        "api_url": API,
        "identity_url": IDENTITY,
        "token_store": f"file:{tmp_path / 'tokens.json'}",
        "refresh_token": "rt-boot",
        "page_size": 2,
    }
    conn = Connection(
        conn_id="xero_default",
        conn_type="xero",
        login=CLIENT_ID,
        password=CLIENT_SECRET,
        extra=json.dumps(extra),
    )
    monkeypatch.setenv("AIRFLOW_CONN_XERO_DEFAULT", conn.as_json())


def test_landing_files_are_the_records_arrays_as_sent(requests_mock, monkeypatch, tmp_path) -> None:
    _connection(monkeypatch, tmp_path)
    requests_mock.post(TOKEN_URL, json={"access_token": "at", "refresh_token": "rt", "expires_in": 1800})
    pagination = {"pageCount": 2, "itemCount": 3}
    requests_mock.get(
        URL,
        [
            {"text": f'{{"Invoices": {PAGE_1}, "pagination": {json.dumps({"page": 1, **pagination})}}}'},
            {"text": f'{{"Invoices": {PAGE_2}, "pagination": {json.dumps({"page": 2, **pagination})}}}'},
        ],
    )
    options = {"sleep": lambda _: None, "retry_wait": tenacity.wait_none(), "clock": lambda: 1_700_000_000.0}

    result = pipeline.extract(
        "xero_default", TENANT, "invoices", None, tmp_path / "data", "run-1", hook_options=options
    )

    landing = Path(result["work_dir"]) / "landing"
    assert [path.name for path in sorted(landing.iterdir())] == ["page-00001.json", "page-00002.json"]
    assert (landing / "page-00001.json").read_text() == PAGE_1
    assert (landing / "page-00002.json").read_text() == PAGE_2
    assert result["records"] == 3 and result["pages"] == 2 and result["api_calls"] == 2


def test_trimming_keeps_the_records_left_as_sent(tmp_path) -> None:
    (tmp_path / "page-00001.json").write_text(PAGE_1)
    (tmp_path / "page-00002.json").write_text(PAGE_2)
    cap = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)  # the first record's instant

    dropped = pipeline._trim_landing(tmp_path, "UpdatedDateUTC", cap)

    assert dropped == 2
    first = (
        '{"InvoiceID": "a", "UpdatedDateUTC": "/Date(1700000000000+0000)/", "Total": 1234.5678901234567890}'
    )
    assert (tmp_path / "page-00001.json").read_text() == f"[{first}]"
    assert (tmp_path / "page-00002.json").read_text() == "[]"
