"""Outgoing requests, stop conditions, call counts and lossless paging of XeroClient.iter_pages."""

from __future__ import annotations

import itertools
import json
import threading
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from tests.client.fakes import API, BASE_MS, TENANT, FakeXero
from xero import __version__
from xero.client import format_modified_since, parse_updated
from xero.entities import ACCOUNTS, CONTACTS, INVOICES, PAYMENTS
from xero.exceptions import XeroMalformedResponse, XeroPagingError

INVOICES_URL = f"{API}/api.xro/2.0/Invoices"


def ids(pages) -> list[str]:
    return [record["InvoiceID"] for page in pages for record in page.records]


class TestOutgoingRequests:
    def test_headers_and_params_of_a_paged_entity(self, requests_mock, make_client) -> None:
        fake = FakeXero(INVOICES, 3)
        requests_mock.get(INVOICES_URL, text=fake)
        since = datetime(2024, 3, 5, 14, 7, 9, 987654, tzinfo=UTC)

        pages = list(make_client().iter_pages(TENANT, INVOICES, since))

        assert len(pages) == 1
        request = requests_mock.request_history[0]
        assert request.headers["Authorization"] == "Bearer access-1"
        assert request.headers["xero-tenant-id"] == TENANT
        assert request.headers["Accept"] == "application/json"
        assert request.headers["User-Agent"] == f"airflow-provider-xero/{__version__}"
        assert request.headers["If-Modified-Since"] == "2024-03-05T14:07:09"
        assert fake.requests[0]["query"] == {"page": "1", "pageSize": "1000", "includeArchived": "true"}
        assert request.timeout == 60.0

    def test_if_modified_since_is_converted_to_utc(self) -> None:
        aest = timezone(timedelta(hours=10))
        assert format_modified_since(datetime(2024, 3, 6, 0, 7, 9, 500, tzinfo=aest)) == "2024-03-05T14:07:09"
        assert format_modified_since(datetime(2024, 3, 5, 14, 7, 9)) == "2024-03-05T14:07:09"

    def test_no_if_modified_since_on_a_full_read(self, requests_mock, make_client) -> None:
        fake = FakeXero(INVOICES, 1)
        requests_mock.get(INVOICES_URL, text=fake)
        list(make_client().iter_pages(TENANT, INVOICES, None))
        assert "If-Modified-Since" not in requests_mock.request_history[0].headers

    @pytest.mark.parametrize(
        ("entity", "expected"),
        [
            pytest.param(PAYMENTS, {"page": "1", "pageSize": "1000"}, id="payments-no-archived"),
            pytest.param(
                CONTACTS, {"page": "1", "pageSize": "1000", "includeArchived": "true"}, id="contacts"
            ),
        ],
    )
    def test_include_archived_only_where_the_entity_says(
        self, requests_mock, make_client, entity, expected
    ) -> None:
        fake = FakeXero(entity, 2)
        requests_mock.get(f"{API}/api.xro/2.0/{entity.path}", text=fake)
        list(make_client().iter_pages(TENANT, entity, None))
        assert fake.requests[0]["query"] == expected
        assert "order" not in fake.requests[0]["query"]

    def test_unpaged_entity_is_one_call_without_page_params(self, requests_mock, make_client) -> None:
        fake = FakeXero(ACCOUNTS, 1500, pagination=False)
        requests_mock.get(f"{API}/api.xro/2.0/Accounts", text=fake)
        client = make_client()

        pages = list(client.iter_pages(TENANT, ACCOUNTS, datetime(2020, 1, 1, tzinfo=UTC)))

        assert [len(page.records) for page in pages] == [1500]
        assert fake.requests[0]["query"] == {}
        assert fake.requests[0]["headers"]["If-Modified-Since"] == "2020-01-01T00:00:00"
        assert client.calls == {TENANT: 1}

    def test_configured_page_size_is_sent(self, requests_mock, make_client) -> None:
        fake = FakeXero(INVOICES, 5)
        requests_mock.get(INVOICES_URL, text=fake)
        pages = list(make_client(page_size=2).iter_pages(TENANT, INVOICES, None))
        assert [len(p.records) for p in pages] == [2, 2, 1]
        assert [r["query"]["pageSize"] for r in fake.requests] == ["2", "2", "2"]
        assert [r["query"]["page"] for r in fake.requests] == ["1", "2", "3"]

    def test_empty_tenant_id_is_rejected_before_any_call(self, requests_mock, make_client) -> None:
        with pytest.raises(ValueError, match="tenant_id"):
            list(make_client().iter_pages(" ", INVOICES, None))
        assert requests_mock.call_count == 0


class TestStopConditionsAndCallCounts:
    @pytest.mark.parametrize(
        ("count", "pagination", "calls", "sizes"),
        [
            pytest.param(2500, True, 3, [1000, 1000, 500], id="2500-records-3-calls"),
            pytest.param(0, True, 1, [0], id="unchanged-1-call"),
            pytest.param(999, True, 1, [999], id="short-first-page"),
            pytest.param(2000, True, 2, [1000, 1000], id="exact-multiple-stops-on-pageCount"),
            pytest.param(
                2000, False, 3, [1000, 1000, 0], id="exact-multiple-without-pagination-needs-empty-page"
            ),
            pytest.param(2500, False, 3, [1000, 1000, 500], id="short-page-without-pagination"),
        ],
    )
    def test_calls(self, requests_mock, make_client, count, pagination, calls, sizes) -> None:
        fake = FakeXero(INVOICES, count, pagination=pagination)
        requests_mock.get(INVOICES_URL, text=fake)
        client = make_client()

        pages = list(client.iter_pages(TENANT, INVOICES, None))

        assert [len(page.records) for page in pages] == sizes
        assert [page.number for page in pages] == list(range(1, len(sizes) + 1))
        assert requests_mock.call_count == calls
        assert client.calls[TENANT] == calls
        assert len(set(ids(pages))) == count

    def test_pages_are_yielded_as_they_arrive_with_the_next_one_on_its_way(
        self, requests_mock, make_client
    ) -> None:
        fake = FakeXero(INVOICES, 2500)
        requests_mock.get(INVOICES_URL, text=fake)
        iterator = make_client().iter_pages(TENANT, INVOICES, None)
        first = next(iterator)
        assert first.page == 1 and first.page_count == 3 and first.item_count == 2500
        assert requests_mock.call_count <= 2  # page 2 may be on its way; page 3 waits for page 2
        iterator.close()  # a caller that stops does not wait for page 2; if already sent, it finishes
        for thread in threading.enumerate():
            if thread.name.startswith("xero-next-page"):
                thread.join(10)
        assert requests_mock.call_count in (1, 2)  # at most that one call; page 3 is never requested
        assert [r["query"]["page"] for r in fake.requests] == ["1", "2"][: requests_mock.call_count]

    def test_pages_are_requested_once_each_in_order(self, requests_mock, make_client) -> None:
        """Each page is requested once, in order, and every record arrives once."""
        fake = FakeXero(INVOICES, 4500)
        requests_mock.get(INVOICES_URL, text=fake)
        pages = list(make_client().iter_pages(TENANT, INVOICES, None))
        assert [page.page for page in pages] == [1, 2, 3, 4, 5]
        assert [r["query"]["page"] for r in fake.requests] == ["1", "2", "3", "4", "5"]
        assert len({record["InvoiceID"] for page in pages for record in page.records}) == 4500

    def test_a_short_page_despite_page_count_ends_the_read(self, requests_mock, make_client) -> None:
        fake = FakeXero(INVOICES, 1500)

        def overstated(request: Any, context: Any) -> str:
            body = json.loads(fake(request, context))
            body["pagination"]["pageCount"] = 5  # says more pages follow than there are
            return json.dumps(body)

        requests_mock.get(INVOICES_URL, text=overstated)
        pages = list(make_client().iter_pages(TENANT, INVOICES, None))
        assert [page.count for page in pages] == [1000, 500]  # the short page ends the read
        assert requests_mock.call_count == 2

    def test_304_not_modified_is_an_empty_page(self, requests_mock, make_client) -> None:
        requests_mock.get(INVOICES_URL, status_code=304)
        pages = list(make_client().iter_pages(TENANT, INVOICES, datetime(2024, 1, 1, tzinfo=UTC)))
        assert [p.records for p in pages] == [[]]
        assert requests_mock.call_count == 1

    def test_response_without_the_entity_list_is_malformed(self, requests_mock, make_client) -> None:
        requests_mock.get(INVOICES_URL, json={"Contacts": []})
        with pytest.raises(XeroMalformedResponse, match="'Invoices'"):
            list(make_client().iter_pages(TENANT, INVOICES, None))

    @pytest.mark.parametrize(
        "body",
        [
            pytest.param('{"Invoices": null}', id="null-list"),
            pytest.param('[{"InvoiceID": "a"}]', id="not-an-object"),
        ],
    )
    def test_json_of_another_shape_is_malformed_and_not_retried(
        self, requests_mock, make_client, body
    ) -> None:
        requests_mock.get(INVOICES_URL, text=body)
        with pytest.raises(XeroMalformedResponse, match="'Invoices'"):
            list(make_client().iter_pages(TENANT, INVOICES, None))
        assert requests_mock.call_count == 1

    def test_a_truncated_page_is_retried(self, requests_mock, make_client, sleeps) -> None:
        fake = FakeXero(INVOICES, 3)
        requests_mock.get(INVOICES_URL, [{"text": '{"Invoices": [{"InvoiceID": "a", "Tot'}, {"text": fake}])
        (page,) = make_client().iter_pages(TENANT, INVOICES, None)
        assert len(ids([page])) == 3 and requests_mock.call_count == 2 and sleeps == [0]

    def test_page_repr_hides_records(self, requests_mock, make_client) -> None:
        fake = FakeXero(INVOICES, 1)
        requests_mock.get(INVOICES_URL, text=fake)
        (page,) = make_client().iter_pages(TENANT, INVOICES, None)
        assert "InvoiceID" not in repr(page) and "AUTHORISED" not in repr(page)


def naive_offset_loop(client, fake) -> list[str]:
    """What several public taps do: page += 1 until a short page."""
    seen, page = [], 1
    while True:
        data = client.request_json(
            "GET", INVOICES_URL, tenant_id=TENANT, params={"page": page, "pageSize": 1000}
        )
        seen += [r["InvoiceID"] for r in data["Invoices"]]
        if len(data["Invoices"]) < 1000:
            return seen
        page += 1


class TestLosslessPaging:
    def test_the_fake_reproduces_the_loss_of_a_naive_loop(self, requests_mock, make_client) -> None:
        fake = FakeXero(INVOICES, 2500)
        requests_mock.get(INVOICES_URL, text=fake)
        first = fake.nth_id(10)
        skipped = fake.nth_id(1000)  # first record of page 2, slides onto page 1 when #10 moves
        fake.between[2] = lambda f: f.update(first)

        seen = naive_offset_loop(make_client(), fake)

        assert skipped not in seen
        assert len(set(seen)) == 2499

    def test_update_between_pages_triggers_one_recovery_pass_by_key(self, requests_mock, make_client) -> None:
        fake = FakeXero(INVOICES, 2500)
        requests_mock.get(INVOICES_URL, text=fake)
        moved = fake.nth_id(10)
        skipped = fake.nth_id(1000)
        last_of_page_1 = datetime.fromtimestamp((BASE_MS + 1000 * 1500) // 1000, UTC)
        fake.between[2] = lambda f: f.update(moved)
        client = make_client()

        pages = list(client.iter_pages(TENANT, INVOICES, None))

        assert skipped in ids(pages)
        assert set(ids(pages)) == set(fake.records)
        recovery = [p for p in pages if p.pass_number == 2]
        assert recovery, "a recovery pass must follow the reappearance"
        # the skip can only be after the page the moved record was read on: nothing before its end is re-read
        assert recovery[0].modified_since == last_of_page_1
        assert fake.requests[3]["headers"]["If-Modified-Since"] == format_modified_since(last_of_page_1)
        # the recovery reads by key: page 1 from the second of the last record read, never page 2
        last_read = datetime.fromtimestamp(int(recovery[0].records[-1]["UpdatedDateUTC"][6:-7]) // 1000, UTC)
        assert fake.requests[4]["headers"]["If-Modified-Since"] == format_modified_since(last_read)
        assert [r["query"]["page"] for r in fake.requests] == ["1", "2", "3", "1", "1"]
        # main pass 3 calls; the recovery re-reads the 1,501 records from the end of page 1 on: 2 calls
        assert requests_mock.call_count == 5
        assert client.calls[TENANT] == 5
        # the latest version of the moved record is among the pages (loader keeps the last occurrence)
        last = [r for p in pages for r in p.records if r["InvoiceID"] == moved][-1]
        assert last["UpdatedDateUTC"] == fake.records[moved]["UpdatedDateUTC"]

    def test_recovery_since_is_announced_on_pages_after_a_move(self, requests_mock, make_client) -> None:
        fake = FakeXero(INVOICES, 2500)
        requests_mock.get(INVOICES_URL, text=fake)
        moved = fake.nth_id(10)
        fake.between[2] = lambda f: f.update(moved)
        pages = list(make_client().iter_pages(TENANT, INVOICES, None))
        assert pages[0].recovery_since is None and pages[1].recovery_since is None
        assert pages[2].recovery_since == datetime.fromtimestamp((BASE_MS + 1000 * 1500) // 1000, UTC)

    def test_several_moves_recover_from_the_earliest(self, requests_mock, make_client) -> None:
        fake = FakeXero(INVOICES, 3500)
        requests_mock.get(INVOICES_URL, text=fake)
        early, late = fake.nth_id(5), fake.nth_id(1500)
        fake.between[2] = lambda f: f.update(early)
        fake.between[3] = lambda f: f.update(late)

        pages = list(make_client().iter_pages(TENANT, INVOICES, datetime(2023, 1, 1, tzinfo=UTC)))

        assert set(ids(pages)) == set(fake.records)
        recovery = [p for p in pages if p.pass_number == 2]
        assert recovery[0].modified_since == datetime.fromtimestamp((BASE_MS + 1000 * 1500) // 1000, UTC)

    def test_a_move_read_on_the_last_page_needs_no_recovery(self, requests_mock, make_client) -> None:
        """A record read on the last page it could skip at moves nothing still to be read."""
        fake = FakeXero(INVOICES, 2500)
        requests_mock.get(INVOICES_URL, text=fake)
        fake.between[3] = lambda f: f.update(f.nth_id(1990))  # read on page 2, moves before page 3
        pages = list(make_client().iter_pages(TENANT, INVOICES, None))
        assert set(ids(pages)) == set(fake.records)
        assert any(p.pass_number == 2 for p in pages)  # page 2 -> 3 is a boundary crossed after it
        fake2 = FakeXero(INVOICES, 2500)
        requests_mock.get(INVOICES_URL, text=fake2)
        fake2.between[3] = lambda f: f.update(f.nth_id(2400))  # on page 3, not read yet: only moves ahead
        pages = list(make_client().iter_pages(TENANT, INVOICES, None))
        assert set(ids(pages)) == set(fake2.records)
        assert all(p.pass_number == 1 for p in pages)

    def test_new_records_mid_paging_need_no_recovery(self, requests_mock, make_client) -> None:
        fake = FakeXero(INVOICES, 1500)
        requests_mock.get(INVOICES_URL, text=fake)
        fake.between[2] = lambda f: [f.add() for _ in range(600)]
        client = make_client()

        pages = list(client.iter_pages(TENANT, INVOICES, None))

        assert set(ids(pages)) == set(fake.records)
        assert all(p.pass_number == 1 for p in pages)
        assert requests_mock.call_count == 3

    def test_update_of_an_unread_record_needs_no_recovery(self, requests_mock, make_client) -> None:
        fake = FakeXero(INVOICES, 2500)
        requests_mock.get(INVOICES_URL, text=fake)
        fake.between[2] = lambda f: f.update(f.nth_id(2200))
        pages = list(make_client().iter_pages(TENANT, INVOICES, None))
        assert set(ids(pages)) == set(fake.records)
        assert requests_mock.call_count == 3

    def test_an_overlapping_duplicate_is_not_a_move(self, requests_mock, make_client) -> None:
        fake = FakeXero(INVOICES, 2500)
        requests_mock.get(INVOICES_URL, text=fake)
        fake.overlap.add(2)
        pages = list(make_client().iter_pages(TENANT, INVOICES, None))
        assert [len(p.records) for p in pages] == [1000, 1001, 500]
        assert set(ids(pages)) == set(fake.records)
        assert requests_mock.call_count == 3

    def test_a_record_leaving_the_set_triggers_recovery_from_the_newest_read(
        self, requests_mock, make_client
    ) -> None:
        fake = FakeXero(INVOICES, 2500)
        requests_mock.get(INVOICES_URL, text=fake)
        skipped = fake.nth_id(1000)
        newest_on_page_1 = datetime.fromtimestamp((BASE_MS + 1000 * 1500) // 1000, UTC)
        everything = set(fake.records)  # the removed record was read on page 1, before it left
        fake.between[2] = lambda f: f.remove(f.nth_id(3))

        pages = list(make_client().iter_pages(TENANT, INVOICES, None))

        assert skipped in ids(pages)
        assert set(ids(pages)) == everything
        recovery = [p for p in pages if p.pass_number == 2]
        assert recovery[0].modified_since == newest_on_page_1
        assert requests_mock.call_count == 3 + 2  # recovery re-reads only records 1000.. (1,500 rows)

    def test_constant_churn_completes_in_one_recovery_pass(self, requests_mock, make_client) -> None:
        """The earliest record is updated before every request: the key read is not thrown off by it."""
        fake = FakeXero(INVOICES, 2500)
        requests_mock.get(INVOICES_URL, text=fake)
        for n in range(2, 60):
            fake.between[n] = lambda f: f.update(f.ordered()[0]["InvoiceID"])
        client = make_client(max_passes=2)

        pages = list(client.iter_pages(TENANT, INVOICES, None))

        assert {p.pass_number for p in pages} == {1, 2}
        latest: dict[str, str] = {}
        for record in (r for p in pages for r in p.records):
            latest[record["InvoiceID"]] = record["UpdatedDateUTC"]
        assert latest == {key: value["UpdatedDateUTC"] for key, value in fake.records.items()}
        edits = len(fake.requests) - 1
        assert client.calls[TENANT] <= 2 * 3 + edits // 1000 + 2

    def test_data_that_never_settles_within_one_second_raises_instead_of_losing_records(
        self, requests_mock, make_client
    ) -> None:
        """More records than a page share one second and keep changing within it: only offsets can page there."""
        fake = FakeXero(INVOICES, 20)
        for record in fake.records.values():
            record["UpdatedDateUTC"] = f"/Date({BASE_MS}+0000)/"
        fake.tick = itertools.count(BASE_MS + 1).__next__  # every update stays within the same second
        requests_mock.get(INVOICES_URL, text=fake)
        for n in range(2, 400):
            fake.between[n] = lambda f: f.update(f.ordered()[0]["InvoiceID"])
        with pytest.raises(XeroPagingError, match="3 paging passes"):
            list(make_client(max_passes=3, page_size=2).iter_pages(TENANT, INVOICES, None))

    def test_move_of_a_record_without_a_readable_date_rereads_the_window(
        self, requests_mock, make_client
    ) -> None:
        fake = FakeXero(INVOICES, 1500)
        requests_mock.get(INVOICES_URL, text=fake)
        target = fake.nth_id(3)
        fake.shown_updated[target] = "not a date"
        since = datetime(2023, 6, 1, 12, 0, 0, tzinfo=UTC)

        def move(f: FakeXero) -> None:
            f.update(target)

        fake.between[2] = move
        pages = list(make_client().iter_pages(TENANT, INVOICES, since))
        recovery = [p for p in pages if p.pass_number == 2]
        assert recovery and recovery[0].modified_since == since


class TestParseUpdated:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            pytest.param(
                "/Date(1573755038314+0000)/", datetime(2019, 11, 14, 18, 10, 38, 314000, UTC), id="ms"
            ),
            pytest.param(
                "/Date(1573755038314)/", datetime(2019, 11, 14, 18, 10, 38, 314000, UTC), id="no-offset"
            ),
            pytest.param("2019-03-05T18:59:06Z", datetime(2019, 3, 5, 18, 59, 6, tzinfo=UTC), id="iso"),
            pytest.param("garbage", None, id="garbage"),
            pytest.param(None, None, id="none"),
        ],
    )
    def test_values(self, value, expected) -> None:
        assert parse_updated(value) == expected


class TestPageBody:
    def test_the_body_is_the_records_array_as_sent_and_money_stays_exact(
        self, requests_mock, make_client
    ) -> None:
        records = (
            '[{"InvoiceID": "a", "UpdatedDateUTC": "/Date(1700000000000+0000)/",'
            ' "Total": 0.1000000000000000055511151231257827, "SubTotal": 12345678901234567.89}]'
        )
        pagination = '{"page": 1, "pageSize": 1000, "pageCount": 1, "itemCount": 1}'
        requests_mock.get(
            INVOICES_URL, text=f'{{"Id": "x", "Invoices": {records}, "pagination": {pagination}}}'
        )

        (page,) = make_client().iter_pages(TENANT, INVOICES, None)

        assert page.body == records.encode() and page.count == 1
        assert page.records[0]["Total"] == Decimal("0.1000000000000000055511151231257827")
        assert page.records[0]["SubTotal"] == Decimal("12345678901234567.89")

    def test_elements_that_are_not_records_are_kept_and_counted(self, requests_mock, make_client) -> None:
        def body(elements: list[object], page: int) -> dict:
            return {
                "json": {"Invoices": elements, "pagination": {"page": page, "pageCount": 2, "itemCount": 4}}
            }

        first = {"InvoiceID": "a", "UpdatedDateUTC": "/Date(1700000000000+0000)/"}
        last = {"InvoiceID": "b", "UpdatedDateUTC": "/Date(1700000001000+0000)/"}
        requests_mock.get(INVOICES_URL, [body([first, 7, None], 1), body([last], 2)])

        pages = list(make_client(page_size=3).iter_pages(TENANT, INVOICES, None))

        assert [p.count for p in pages] == [3, 1]  # a full first page: the second is read
        assert pages[0].records == [first, 7, None]  # landed as sent; normalising quarantines them
        assert [p.recovery_since for p in pages] == [None, None]
