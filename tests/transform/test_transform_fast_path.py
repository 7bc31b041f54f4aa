"""The fast paths: Struct decoding with Arrow conversion, row groups, and validation in chunks.

Every fast path must give exactly what the strict path gives, and hand a page it cannot type
cleanly to the strict path so quarantine reasons stay exact.
"""

from __future__ import annotations

import json
import os
import random
from decimal import Decimal

import pyarrow.parquet as pq
import pytest

from xero import normalize
from xero.entities import ENTITIES, INVOICES
from xero.normalize import normalize_pages
from xero.validate import validate_tables

TENANT = "4f7a3d1e-9b2c-4e8f-a1d5-6c3b2a1f0e9d"


@pytest.fixture
def strict_only(monkeypatch):
    """Force every page through the strict, value-by-value path."""

    def refuse(self, raws, start_seq, text=None):
        raise normalize._SlowPath

    monkeypatch.setattr(normalize._FastPath, "page", refuse)


@pytest.fixture
def fast_only(monkeypatch):
    """Fail the test if any page takes the strict path."""

    def refuse(self, raws, start_seq):
        raise AssertionError("page took the strict path")

    monkeypatch.setattr(normalize._PageNormalizer, "page", refuse)


@pytest.fixture
def strict_pages(monkeypatch):
    """Record the first ``_seq`` of each run of records typed by the strict path."""
    calls: list[int] = []
    original = normalize._PageNormalizer.page

    def counting(self, raws, start_seq):
        calls.append(start_seq)
        return original(self, raws, start_seq)

    monkeypatch.setattr(normalize._PageNormalizer, "page", counting)
    return calls


def tables(result) -> dict[str, list[dict]]:
    return {name: pq.read_table(path).to_pylist() for name, path in result.files.items()}


def both_paths(request, tmp_path, entity, pages):
    """Normalise ``pages`` with the fast path and with the strict path; return both outputs."""
    fast = normalize_pages(entity, TENANT, pages, tmp_path / "fast")
    request.getfixturevalue("strict_only")
    strict = normalize_pages(entity, TENANT, pages, tmp_path / "strict")
    return fast, strict


class TestFastEqualsStrict:
    @pytest.mark.parametrize("name", sorted(ENTITIES))
    def test_clean_pages(self, name, make, write_pages, tmp_path, request) -> None:
        pages = write_pages([make(name, 1), make(name, 2)], [make(name, 3)])
        fast, strict = both_paths(request, tmp_path, name, pages)
        assert tables(fast) == tables(strict)
        assert fast.max_cursor == strict.max_cursor
        assert fast.rows == strict.rows

    def test_nulls_missing_fields_and_null_objects(
        self, make, write_pages, delete, tmp_path, request
    ) -> None:
        page = [
            make("invoices", 1, Contact=None, Total=None, Reference=delete, SentToContact=None),
            make("invoices", 2, LineItems=None, DueDate=None, CurrencyRate=delete),
            make("invoices", 3, LineItems=[]),
        ]
        fast, strict = both_paths(request, tmp_path, INVOICES, write_pages(page))
        assert tables(fast) == tables(strict)
        invoices = tables(fast)["invoice"]
        assert invoices[0]["contact_id"] is None
        assert invoices[0]["total"] is None
        assert invoices[1]["due_date"] is None

    def test_line_items_keep_the_text_xero_sent(self, write_pages, tmp_path, request) -> None:
        line = '{"LineItemID":"l1","Description":"A\\/B \\u0026 C","LineAmount":1.50}'
        text = (
            '[{"InvoiceID": "a", "UpdatedDateUTC": "/Date(1573755038314+0000)/", "LineItems": [LINE]}]'
        ).replace("LINE", line)
        fast, strict = both_paths(request, tmp_path, INVOICES, write_pages(text))
        assert tables(fast) == tables(strict)
        (item,) = tables(strict)["invoice_line_item"]
        # Escapes and number texts as sent, so stored rows compare equal whichever path typed them.
        assert item["_raw"] == line
        assert item["description"] == "A/B & C"

    @pytest.mark.parametrize(
        "number",
        ["115", "115.5", "-0.5", "1e2", "1.5E-3", "0.0000", "123456789012345.6789", "-0.0"],
    )
    def test_decimal_texts(self, number, write_pages, tmp_path, request) -> None:
        text = (
            '[{"InvoiceID": "a", "Total": NUMBER, "CurrencyRate": NUMBER, '
            '"UpdatedDateUTC": "/Date(1573755038314+0000)/"}]'
        ).replace("NUMBER", number)
        fast, strict = both_paths(request, tmp_path, INVOICES, write_pages(text))
        assert tables(fast) == tables(strict)
        (row,) = tables(fast)["invoice"]
        assert row["total"] == Decimal(number)

    @pytest.mark.parametrize(
        "text",
        [
            "/Date(1573755038314+0000)/",
            "/Date(0+0000)/",
            "/Date(-86400000+0000)/",
            "/Date(0001573755038314+0000)/",
            "/Date(+5+0000)/",
            "/Date(+0000)/",
            "/Date(1573755038314)/",
            "/Date(1573755038314+1300)/",
            "/Date(253402300800000+0000)/",
            "/Date(1 +0000)/",
        ],
    )
    def test_date_texts(self, text, write_pages, tmp_path, request) -> None:
        page = json.dumps([{"InvoiceID": "a", "Date": text, "UpdatedDateUTC": text}])
        fast, strict = both_paths(request, tmp_path, INVOICES, write_pages(page))
        assert tables(fast) == tables(strict)


class TestFastPathIsTaken:
    def test_clean_invoices_never_take_the_strict_path(self, fast_only, make, write_pages, tmp_path) -> None:
        result = normalize_pages(
            INVOICES, TENANT, write_pages([make("invoices", n) for n in range(1, 6)]), tmp_path / "out"
        )
        assert result.rows == {"invoice": 5, "invoice_line_item": 10}
        lines = tables(result)["invoice_line_item"]
        assert [line["line_number"] for line in lines] == [1, 2] * 5
        # children keep their own JSON text exactly as landed
        assert json.loads(lines[0]["_raw"]) == make("invoices", 1)["LineItems"][0]

    @pytest.mark.parametrize(
        "changes",
        [
            pytest.param({"Total": "115.00"}, id="number-as-string"),
            pytest.param({"Total": 1.23456}, id="too-many-places"),
            pytest.param({"Date": "2018-10-21T00:00:00"}, id="iso-date"),
            pytest.param({"SentToContact": "true"}, id="bool-as-string"),
            pytest.param({"InvoiceID": ""}, id="empty-id"),
            pytest.param({"Contact": "ABC"}, id="object-expected"),
        ],
    )
    def test_only_the_page_with_a_surprise_takes_the_strict_path(
        self, strict_pages, changes, make, write_pages, tmp_path
    ) -> None:
        pages = write_pages(
            [make("invoices", 1), make("invoices", 2)],
            [make("invoices", 3), make("invoices", 4, **changes)],
            [make("invoices", 5)],
        )
        with_surprise = normalize_pages(INVOICES, TENANT, pages, tmp_path / "out")
        assert strict_pages == [2]  # the second page, whose first record has _seq 2
        assert with_surprise.records_seen == 5

    def test_a_surprise_sends_only_a_short_run_of_records_to_the_strict_path(
        self, strict_pages, make, write_pages, tmp_path, request
    ) -> None:
        page = [make("invoices", n) for n in range(1, 41)]
        page[25] = make("invoices", 26, Total="12,50")
        fast = normalize_pages(INVOICES, TENANT, write_pages(page), tmp_path / "fast")
        (start,) = strict_pages
        assert start <= 25 < start + normalize.STRICT_RECORDS
        assert fast.quarantined == 1
        assert fast.rows == {"invoice": 39, "invoice_line_item": 78}
        request.getfixturevalue("strict_only")
        strict = normalize_pages(INVOICES, TENANT, write_pages(page, directory="again"), tmp_path / "strict")
        assert tables(fast) == tables(strict)

    def test_surprises_everywhere_send_the_page_to_the_strict_path_soon(
        self, strict_pages, make, write_pages, tmp_path, request
    ) -> None:
        page = [make("invoices", n, Date="2018-10-21T00:00:00") for n in range(1, 201)]
        fast = normalize_pages(INVOICES, TENANT, write_pages(page), tmp_path / "fast")
        assert strict_pages == sorted(strict_pages)
        assert len(strict_pages) <= normalize.FAST_REFUSALS
        assert fast.rows == {"invoice": 200, "invoice_line_item": 400}
        request.getfixturevalue("strict_only")
        strict = normalize_pages(INVOICES, TENANT, write_pages(page, directory="again"), tmp_path / "strict")
        assert tables(fast) == tables(strict)

    def test_quarantine_reasons_come_from_the_strict_parsers(self, make, write_pages, tmp_path) -> None:
        pages = write_pages([make("invoices", 1)], [make("invoices", 2, Total="12,50")])
        result = normalize_pages(INVOICES, TENANT, pages, tmp_path / "out")
        (row,) = tables(result)["_quarantine"]
        assert row["reason"] == "Total: expected a decimal number, got '12,50'"
        assert result.rows == {"invoice": 1, "invoice_line_item": 2}


class TestRowGroups:
    def test_pages_are_gathered_into_row_groups(self, make, write_pages, tmp_path) -> None:
        pages = write_pages(*[[make("invoices", n)] for n in range(1, 8)])
        result = normalize_pages(INVOICES, TENANT, pages, tmp_path / "out", row_group_rows=3)
        parents = pq.ParquetFile(result.files["invoice"])
        assert [parents.metadata.row_group(i).num_rows for i in range(parents.num_row_groups)] == [3, 3, 1]
        children = pq.ParquetFile(result.files["invoice_line_item"])
        assert children.metadata.num_rows == 14
        assert [row["_seq"] for row in tables(result)["invoice"]] == list(range(7))

    def test_row_groups_are_bounded_in_bytes_too(self, tmp_path) -> None:
        import pyarrow as pa

        schema = pa.schema([pa.field("_raw", pa.string())])
        sink = normalize.ParquetSink({"t": (tmp_path / "t.parquet", schema)}, row_group_bytes=10_000)
        for _ in range(5):
            sink.write("t", pa.table({"_raw": ["x" * 1_000] * 4}, schema=schema))  # about 4 kB each
        sink.close()
        groups = pq.ParquetFile(tmp_path / "t.parquet")
        assert [groups.metadata.row_group(i).num_rows for i in range(groups.num_row_groups)] == [12, 8]

    def test_default_keeps_many_pages_in_one_row_group(self, make, write_pages, tmp_path) -> None:
        pages = write_pages(*[[make("contacts", n)] for n in range(1, 5)])
        result = normalize_pages("contacts", TENANT, pages, tmp_path / "out")
        assert pq.ParquetFile(result.files["contact"]).num_row_groups == 1


class TestValidateStreaming:
    def pages(self, make):
        return [
            [make("invoices", 1), make("invoices", 2, Status="NOPE")],
            [make("invoices", 3), make("invoices", 1, Reference="again")],
            [make("invoices", 4, Total=1), make("invoices", 5)],
            [make("invoices", 6, LineItems=[]), make("invoices", 7)],
        ]

    @pytest.mark.parametrize(("group_rows", "chunk_rows"), [(1, 1), (1, 3), (3, 2), (10_000, 50_000)])
    def test_row_groups_and_chunks_do_not_change_the_answer(
        self, group_rows, chunk_rows, make, write_pages, tmp_path
    ) -> None:
        paths = write_pages(*self.pages(make))
        normalize_pages(INVOICES, TENANT, paths, tmp_path / "n", row_group_rows=group_rows)
        result = validate_tables(
            INVOICES, tmp_path / "n", tmp_path / "v", max_bad_share=1, chunk_rows=chunk_rows
        )
        assert result.rows == {"invoice": 5, "invoice_line_item": 8}  # invoice 6 has no lines: it loads
        assert result.duplicates_dropped == 1
        quarantine = tables(result)["_quarantine"]
        assert sorted(row["_seq"] for row in quarantine) == [1, 4]
        lines = tables(result)["invoice_line_item"]
        assert sorted({line["_seq"] for line in lines}) == [2, 3, 5, 7]
        assert result.max_cursor is not None

    def test_table_without_losses_is_linked_not_rewritten(self, make, write_pages, tmp_path) -> None:
        paths = write_pages([make("invoices", 1), make("invoices", 2)])
        normalize_pages(INVOICES, TENANT, paths, tmp_path / "n")
        result = validate_tables(INVOICES, tmp_path / "n", tmp_path / "v")
        source = tmp_path / "n" / "invoice" / "part-00000.parquet"
        assert os.path.samefile(source, result.files["invoice"])
        assert result.rows == {"invoice": 2, "invoice_line_item": 4}
        assert pq.read_table(result.files["_quarantine"]).num_rows == 0

    def test_values_in_reasons_are_exact(self, make, write_pages, tmp_path) -> None:
        paths = write_pages([make("invoices", 1, Total=115.0001, AmountDue=115.0001)])
        normalize_pages(INVOICES, TENANT, paths, tmp_path / "n")
        result = validate_tables(INVOICES, tmp_path / "n", tmp_path / "v", max_bad_share=1)
        assert result.rows == {"invoice": 1, "invoice_line_item": 2}  # within the cent: kept
        paths = write_pages([make("invoices", 1, Total=115.0101)], directory="again")
        normalize_pages(INVOICES, TENANT, paths, tmp_path / "n2")
        result = validate_tables(INVOICES, tmp_path / "n2", tmp_path / "v2", max_bad_share=1)
        (row,) = tables(result)["_quarantine"]
        assert (
            "expect_column_values_to_be_between(_total_minus_sub_total_and_tax): got 0.0101" in row["reason"]
        )


class TestDedupePartitions:
    def test_hash_partitions_give_the_same_winners(self, make, write_pages, tmp_path) -> None:
        from xero.schema import QUARANTINE_SCHEMA
        from xero.validate import _winners

        pages = [[make("invoices", n) for n in range(1, 30)], [make("invoices", n) for n in range(20, 40, 3)]]
        pages.append([make("invoices", 5, Reference="last"), make("invoices", 7, Date="/Date(x)/")])
        normalize_pages(INVOICES, TENANT, write_pages(*pages), tmp_path / "n", row_group_rows=7)
        parent = tmp_path / "n" / "invoice" / "part-00000.parquet"
        quarantine = pq.read_table(
            tmp_path / "n" / "_quarantine" / "part-00000.parquet", schema=QUARANTINE_SCHEMA
        )
        whole = _winners(INVOICES, parent, quarantine)
        split = _winners(INVOICES, parent, quarantine, partition_rows=3)
        assert sorted(split.dropped.to_pylist()) == sorted(whole.dropped.to_pylist())
        assert (split.kept, split.duplicates) == (whole.kept, whole.duplicates) == (31, 5)
        assert len(whole.dropped) == 6  # five earlier occurrences and invoice 7, hidden by its bad update

    @pytest.mark.parametrize("partition_rows", [1_000, 7])
    def test_winners_match_a_plain_reading_of_the_rule(
        self, partition_rows, make, write_pages, tmp_path
    ) -> None:
        from xero.schema import QUARANTINE_SCHEMA
        from xero.validate import _winners

        rng = random.Random(partition_rows)
        pages, reads = [], []  # reads: (invoice number, parses) in _seq order
        for _ in range(6):
            page = []
            for _ in range(rng.randrange(1, 12)):
                number, parses = rng.randrange(1, 25), rng.random() > 0.2
                page.append(
                    make("invoices", number) if parses else make("invoices", number, Date="/Date(x)/")
                )
                reads.append((number, parses))
            pages.append(page)
        normalize_pages(INVOICES, TENANT, write_pages(*pages), tmp_path / "n", row_group_rows=5)
        parent = tmp_path / "n" / "invoice" / "part-00000.parquet"
        quarantine = pq.read_table(
            tmp_path / "n" / "_quarantine" / "part-00000.parquet", schema=QUARANTINE_SCHEMA
        )
        winners = _winners(INVOICES, parent, quarantine, partition_rows=partition_rows)

        last = {number: seq for seq, (number, _) in enumerate(reads)}
        typed = [seq for seq, (_, parses) in enumerate(reads) if parses]
        expected_dropped = [seq for seq in typed if last[reads[seq][0]] != seq]
        kept = [seq for seq in typed if last[reads[seq][0]] == seq]
        superseded = {number for number, seq in last.items() if not reads[seq][1]} & {
            reads[s][0] for s in typed
        }
        assert sorted(winners.dropped.to_pylist()) == expected_dropped
        assert winners.kept == len(kept)
        assert winners.duplicates == len(typed) - len(kept) - len(superseded)

    def test_each_failing_row_quotes_its_own_value(self, make, write_pages, tmp_path) -> None:
        page = [make("payments", 1, Amount=-5), make("payments", 2), make("payments", 3, Amount=0)]
        normalize_pages("payments", TENANT, write_pages(page), tmp_path / "n")
        result = validate_tables("payments", tmp_path / "n", tmp_path / "v", max_bad_share=1)
        reasons = {row["_seq"]: row["reason"] for row in tables(result)["_quarantine"]}
        assert reasons == {
            0: "expect_column_values_to_be_between(amount): got -5.0000",
            2: "expect_column_values_to_be_between(amount): got 0.0000",
        }
