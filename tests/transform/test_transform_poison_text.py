"""Text a warehouse cannot store (NUL, escaped lone surrogates): masked to decode, restored in ``_raw``, cleaned
in typed columns and counted; the masking itself (xero.text) on its own."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from xero.normalize import normalize_pages
from xero.text import LenientDecoder, clean_text_array, decode_masked, mask_lone_surrogates

TENANT = "4f7a3d1e-9b2c-4e8f-a1d5-6c3b2a1f0e9d"


def rows(path: str | Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


class TestMasking:
    @pytest.mark.parametrize(
        "document",
        [
            pytest.param(rb'{"a":"x\ud800y"}', id="lone-high"),
            pytest.param(rb'{"a":"\uDC00"}', id="lone-low-uppercase"),
            pytest.param(rb'{"a":"\ud83d\ude00 and \ud83d"}', id="pair-then-lone"),
            pytest.param(rb'{"a":"\\\ud800"}', id="escaped-backslash-then-lone"),
            pytest.param(rb'{"a":"\ufffd\ue000 \ud800","b":"\ud800\udbff"}', id="placeholders-in-use"),
        ],
    )
    def test_a_masked_document_decodes_and_restores_exactly(self, document: bytes) -> None:
        masked = mask_lone_surrogates(document)
        assert len(masked.data) == len(document) and masked.originals
        decoded = msgspec.json.decode(masked.data)  # msgspec refuses the original
        with pytest.raises(msgspec.DecodeError):
            msgspec.json.decode(document)
        assert masked.restore(pa.array([masked.data.decode()]))[0].as_py() == document.decode()
        cleaned, count = clean_text_array(pa.array([decoded["a"]]), masked.placeholders)
        assert count == 1 and "\ufffd" in cleaned[0].as_py()
        assert not any(0xE000 <= ord(c) < 0xF900 for c in cleaned[0].as_py() if c != "\ue000")

    @pytest.mark.parametrize(
        "document",
        [
            pytest.param(rb'{"a":"\\ud800"}', id="escaped-backslash-is-text"),
            pytest.param(rb'{"a":"\ud83d\ude00"}', id="valid-pair"),
            pytest.param(b'{"a":"\\u0000"}', id="nul-is-valid-json"),
        ],
    )
    def test_valid_documents_are_left_alone(self, document: bytes) -> None:
        masked = mask_lone_surrogates(document)
        assert masked.data is document and not masked.originals

    def test_clean_text_removes_nul_and_counts_changed_values(self) -> None:
        cleaned, count = clean_text_array(pa.array(["a\x00b\x00", "plain", None, "\x00"]))
        assert cleaned.to_pylist() == ["ab", "plain", None, ""] and count == 2
        same, none = clean_text_array(pa.array(["plain", None]))
        assert none == 0 and same.to_pylist() == ["plain", None]

    def test_decoders_read_masked_and_keep_the_raw_field_as_sent(self) -> None:
        envelope = msgspec.defstruct("Envelope", [("Invoices", msgspec.Raw, msgspec.Raw())])
        body = rb'{"Id":"x","Invoices":[{"Name":"a\ud800"}]}'
        decoded = LenientDecoder(msgspec.json.Decoder(envelope), "Invoices").decode(body)
        assert bytes(decoded.Invoices) == rb'[{"Name":"a\ud800"}]'
        assert decode_masked(msgspec.json.Decoder(), rb'["\udc00"]')[0] != ""


class TestNormalize:
    def test_contacts_with_nul_and_lone_surrogate(self, make, write_pages, tmp_path) -> None:
        records = [make("contacts", n) for n in range(3)]
        for record, name in zip(records, ("NUL", "LONE", "Plain Ltd"), strict=True):
            record["Name"] = name
        text = json.dumps(records, separators=(",", ":"))
        text = text.replace('"NUL"', '"Acme\\u0000 Ltd"').replace('"LONE"', '"Caf\\u00e9 \\ud83d Pty"')
        result = normalize_pages("contacts", TENANT, write_pages(text), tmp_path / "out")

        written = rows(result.files["contact"])
        assert [row["name"] for row in written] == ["Acme Ltd", "Café \ufffd Pty", "Plain Ltd"]
        raws = [row["_raw"] for row in written]
        assert raws[0].startswith("{") and '"Acme\\u0000 Ltd"' in raws[0]
        assert '"Caf\\u00e9 \\ud83d Pty"' in raws[1]
        assert "[" + ",".join(raws) + "]" == text  # byte for byte as landed
        assert result.cleaned_text == {"contact.name": 2}
        assert result.quarantined == 0

    def test_strict_path_and_children_keep_the_escapes(self, make, write_pages, tmp_path) -> None:
        good, bad = make("invoices", 1), make("invoices", 2)
        bad["DueDate"] = "/Date(not-a-date)/"  # quarantined: the strict path types this page's records
        good["LineItems"][0]["Description"] = "LONE"
        bad["Reference"] = "LONE"
        text = json.dumps([good, bad], separators=(",", ":")).replace('"LONE"', '"x\\udbff"')

        result = normalize_pages("invoices", TENANT, write_pages(text), tmp_path / "out")

        (invoice,) = rows(result.files["invoice"])
        lines = rows(result.files["invoice_line_item"])
        assert lines[0]["description"] == "x\ufffd" and '"x\\udbff"' in lines[0]["_raw"]
        assert invoice["_raw"] in text
        (quarantined,) = rows(result.files["_quarantine"])
        assert '"x\\udbff"' in quarantined["_raw"] and quarantined["_raw"] in text
        assert result.cleaned_text == {"invoice_line_item.description": 1}
