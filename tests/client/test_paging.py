"""The paging algorithm alone (xero.paging.Pager), driven by an in-memory list endpoint: no HTTP.

:class:`ListXero` serves ``page``/``pageSize`` over records ordered by ``(UpdatedDateUTC, id)`` with an
inclusive ``If-Modified-Since`` at second precision, as Xero does; a ``churn`` callback changes the records
before each request. Whatever the churn, the read must end with the latest version of every record (nothing
lost, nothing stale) within a bounded number of calls.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from xero.exceptions import XeroPagingError
from xero.paging import Pager, PageRequest

BASE = datetime(2024, 1, 1, tzinfo=UTC)


class ListXero:
    """A paged list over ``records`` (id → UpdatedDateUTC), changed by ``churn`` before each request."""

    def __init__(self, count: int, churn: Callable[[ListXero], None] | None = None) -> None:
        self.now = BASE
        self.records: dict[str, datetime] = {}
        for _ in range(count):
            self.add()
        self.churn = churn
        self.calls = 0
        self.served: list[str] = []  # ids in the order served, repeats included
        self.edits = 0

    def tick(self) -> datetime:
        self.now += timedelta(milliseconds=1500)  # distinct instants, about two records a second
        return self.now

    def add(self) -> str:
        record_id = f"r{len(self.records):07d}"
        self.records[record_id] = self.tick()
        return record_id

    def update(self, record_id: str) -> None:
        self.records[record_id] = self.tick()
        self.edits += 1

    def ordered(self, since: datetime | None) -> list[tuple[str, datetime]]:
        rows = sorted(self.records.items(), key=lambda item: (item[1], item[0]))
        return [row for row in rows if since is None or row[1] >= since]

    def serve(self, request: PageRequest, size: int) -> tuple[list[tuple[Any, Any]], dict[str, Any]]:
        self.calls += 1
        if self.churn is not None and self.calls > 1:
            self.churn(self)
        rows = self.ordered(request.since)
        chunk = rows[(request.page - 1) * size : request.page * size]
        self.served += [record_id for record_id, _ in chunk]
        pagination = {"page": request.page, "pageCount": -(-len(rows) // size), "itemCount": len(rows)}
        return chunk, pagination


def read(api: ListXero, size: int, since: datetime | None = None, max_passes: int = 5) -> dict[str, Any]:
    """Read ``api`` the way XeroClient.iter_pages does; return the latest version read of each id and stats."""
    pager = Pager(since, size, max_passes=max_passes)
    request: PageRequest | None = pager.first()
    latest: dict[str, datetime] = {}
    passes = 1
    requests: list[PageRequest] = []
    while request is not None:
        requests.append(request)
        cursors, pagination = api.serve(request, size)
        following = pager.advance(request, cursors, pagination)
        pager.inspect(cursors, pagination)
        for record_id, updated in cursors:
            latest[record_id] = updated  # the loader keeps the last occurrence
        if following is None:
            following = pager.end_pass()
            passes += following is not None
        request = following
    return {"latest": latest, "passes": passes, "requests": requests}


def test_an_unchanging_set_costs_the_minimum_and_one_pass() -> None:
    api = ListXero(2500)
    result = read(api, 1000)
    assert result["latest"] == api.records
    assert api.calls == 3 and result["passes"] == 1
    assert [r.page for r in result["requests"]] == [1, 2, 3]


def test_an_exact_multiple_stops_on_page_count() -> None:
    api = ListXero(2000)
    assert read(api, 1000)["latest"] == api.records and api.calls == 2


def test_a_move_recovers_by_key_from_the_end_of_the_moved_records_page() -> None:
    def churn(api: ListXero) -> None:
        if api.calls == 2:
            api.update("r0000010")  # read on page 1

    api = ListXero(2500, churn)
    result = read(api, 1000)
    assert result["latest"] == api.records
    recovery = [r for r in result["requests"] if r.pass_number == 2]
    end_of_page_1 = BASE + timedelta(milliseconds=1500 * 1000)
    assert recovery[0] == PageRequest(end_of_page_1.replace(microsecond=0), 1, 2)
    assert all(r.page == 1 for r in recovery)  # by key: never an offset
    assert [r.since for r in recovery] == sorted(r.since for r in recovery if r.since)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize(
    ("every", "what"),
    [
        pytest.param(1, "read", id="each-request-an-already-read-record"),
        pytest.param(2, "read", id="every-other-request"),
        pytest.param(1, "any", id="each-request-any-record"),
        pytest.param(1, "add", id="each-request-a-new-record"),
    ],
)
def test_churn_loses_nothing_and_costs_at_most_twice_the_minimum(seed: int, every: int, what: str) -> None:
    rng = random.Random(seed)

    def churn(api: ListXero) -> None:
        if api.calls % every:
            return
        if what == "add":
            api.add()
            return
        pool = sorted(set(api.served)) if what == "read" else sorted(api.records)
        api.update(rng.choice(pool))

    count = rng.randrange(1500, 6000)
    api = ListXero(count, churn)
    result = read(api, 500)

    assert result["latest"] == api.records  # every record, at its latest version
    assert result["passes"] <= 2  # a recovery by key is never thrown off
    least = math.ceil(count / 500)
    assert api.calls <= 2 * least + 3, (api.calls, least)


def test_removals_mid_read_lose_nothing_that_stays() -> None:
    rng = random.Random(7)

    def churn(api: ListXero) -> None:
        del api.records[rng.choice(sorted(api.records))]

    api = ListXero(3000, churn)
    result = read(api, 250)
    assert set(api.records) <= set(result["latest"])
    assert all(result["latest"][key] == value for key, value in api.records.items())


def test_a_recovery_that_starts_in_a_crowded_second_pages_by_offset_and_checks_again() -> None:
    """More than a page of records in one second: the key read pages by offset there, with the checks."""
    api = ListXero(0)
    crowded = BASE + timedelta(seconds=10)
    for n in range(30):
        api.records[f"c{n:03d}"] = crowded + timedelta(milliseconds=n)
    api.now = crowded + timedelta(seconds=5)
    for _ in range(40):
        api.add()

    def churn(api: ListXero) -> None:
        if api.calls in (3, 9):
            api.update("c001")  # read on page 1 of the main pass, then again while the recovery pages

    api.churn = churn
    result = read(api, 5)

    assert result["latest"] == api.records
    recovery = [r for r in result["requests"] if r.pass_number >= 2]
    assert any(r.page > 1 for r in recovery), "the crowded second is paged by offset"


def test_data_that_keeps_moving_within_one_second_raises() -> None:
    api = ListXero(0)
    for n in range(20):
        api.records[f"c{n:03d}"] = BASE + timedelta(milliseconds=n)
    step = iter(range(100, 999))

    def churn(api: ListXero) -> None:
        first = api.ordered(None)[0][0]
        api.records[first] = BASE + timedelta(milliseconds=next(step))  # stays in the same second

    api.churn = churn
    with pytest.raises(XeroPagingError, match="3 paging passes"):
        read(api, 2, max_passes=3)


def test_a_move_of_a_record_without_a_readable_date_rereads_the_window() -> None:
    pager = Pager(datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC), 2)
    first = pager.first()
    page_1 = [("a", None), ("b", "/Date(1704110401000+0000)/")]
    second = pager.advance(first, page_1, {"pageCount": 2})
    pager.inspect(page_1, {})
    assert second == PageRequest(first.since, 2, 1)
    page_2 = [("c", "/Date(1704110402000+0000)/"), ("a", "/Date(1704110403000+0000)/")]
    assert pager.advance(second, page_2, {"pageCount": 2}) is None
    pager.inspect(page_2, {})
    assert pager.recovery_since == first.since
    assert pager.end_pass() == PageRequest(first.since, 1, 2)


@pytest.mark.parametrize(("size", "passes"), [(0, 1), (1, 0)])
def test_bad_settings_are_refused(size: int, passes: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Pager(None, size, max_passes=passes)
