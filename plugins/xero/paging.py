"""Lossless paging of Xero's list endpoints: which page to ask for next, and when and where to read again.

This module owns the paging algorithm and nothing else: no HTTP, no decoding. :class:`Pager` is fed each
page's ``(id, UpdatedDateUTC)`` pairs and ``pagination`` and answers with the next :class:`PageRequest`
(an ``If-Modified-Since`` and a ``page``); :meth:`xero.client.XeroClient.iter_pages` sends the requests.
Tests drive it with plain lists.

The hazard
----------
Xero pages by offset over a set ordered by ``UpdatedDateUTC ASC, <ID> ASC``. When a record already read is
updated between two page requests, it leaves its place and goes to the end: every record behind it moves
forward one position, so the record that was first on the next page slides onto the page just read and is
never seen. Each such move skips exactly one record, at a page boundary crossed after the moved record was
read; a record leaving the set mid-read does the same. New records and updates of records not read yet only
add to the end, which the read still reaches.

Reading by offset (the main pass)
---------------------------------
The first pass reads ``page`` 1, 2, … of one ``If-Modified-Since``: ``n`` records cost ``ceil(n / page_size)``
calls, the fewest possible, and an unchanged tenant costs one. Nothing can tell, without extra calls, which
boundary a move skipped at: the moved record only shows up again at the end of the set. So the pass checks,
without extra calls, whether anything may have been skipped, and where the earliest skip can be:

* a record seen again in the same pass with a *different* ``UpdatedDateUTC`` moved. The record it skipped
  sorts after the last record of the page the moved record was first read on (page ``j``): everything up to
  that record was read before any skip could happen. The recovery point is that record's ``UpdatedDateUTC``
  truncated to the second (Xero compares at second precision, inclusively). A move of a record whose
  original ``UpdatedDateUTC`` is unreadable recovers from the start of the pass.
* a record seen again with the *same* ``UpdatedDateUTC`` is the same version served twice (an overlap) and
  costs nothing.
* ``pagination.itemCount`` dropping between two pages means a record left the set: the record skipped sorts
  after the last one read before that page. (A removal and an addition between the same two requests cancel
  out in the count; the scheduled full re-read of an entity is the backstop for that.)

A moved record necessarily reappears later in the same pass (it went to the end, which the pass still
reads; a record updated after the last request moved no record the pass still had to read), so "no record
reappeared with a new ``UpdatedDateUTC`` and no count dropped" proves the pass skipped nothing.

Reading by key (recovery passes)
--------------------------------
A recovery pass starts at the earliest recovery point and reads *by key*: each request asks for page 1 with
``If-Modified-Since`` set to the second of the last record just read. Records already read are then not read
again, except the few sharing that boundary second; records read before the recovery point are not read
again at all. A key read cannot skip: every request returns a prefix of the records at or after its
boundary, so an update only adds a record to the end (it is read again later, at its new place) and a
removal shifts nothing that is still to be read. Under any rate of change the recovery pass therefore
completes, and it is the last one; its progress is kept request by request (a caller that stops may commit
up to the boundary of the last request).

One case needs offsets again: a full page whose records all share the boundary second (more than
``page_size`` records updated within one second). The pass then reads page 2, 3, … of that boundary, with
the checks of the main pass, until it can move its boundary on; a move that may have skipped there costs one
more recovery pass. After ``max_passes`` passes that all may have skipped, :class:`~xero.exceptions.XeroPagingError`
is raised rather than returning incomplete data.

Calls
-----
With no change during the read: the minimum. With changes: the main pass, plus one key read of the records
after the earliest recovery point (each request returns ``page_size`` minus the records of its boundary
second), so never more than about twice the minimum, whatever the rate of change.

Pages may repeat records (within and across passes); the loader keeps the last occurrence of an id, which
is its newest version: a version is never served after a newer one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from xero.exceptions import XeroPagingError
from xero.first_seen import NOT_SEEN, FirstSeen, id_key
from xero.parsing import parse_xero_datetime

#: Recovery point meaning "read again from the start of the window" (no usable ``UpdatedDateUTC``).
BEGINNING = datetime.min.replace(tzinfo=UTC)


def truncate_to_second(value: datetime) -> datetime:
    """Return ``value`` in UTC without its fraction of a second (naive values are taken as UTC)."""
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.replace(microsecond=0)


def parse_updated(value: object) -> datetime | None:
    """Return the instant of a Xero ``UpdatedDateUTC`` value, or ``None`` when it is absent or unreadable.

    Only the paging checks use this, and a bad value must not fail a page (the normaliser reports it).
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        return parse_xero_datetime(value, "UpdatedDateUTC")
    except (ValueError, TypeError):
        return None


def as_int(value: object) -> int | None:
    """Return ``value`` as an ``int`` when it is one (or a string of digits), else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


@dataclass(frozen=True)
class PageRequest:
    """One request of a paged read.

    :param since: the ``If-Modified-Since`` to send, whole seconds in UTC (``None``: none).
    :param page: the 1-based ``page`` of the set ``since`` selects.
    :param pass_number: 1 for the main pass, 2+ for recovery passes.
    """

    since: datetime | None
    page: int
    pass_number: int = 1


@dataclass
class _Segment:
    """Consecutive pages read by offset from one ``If-Modified-Since``.

    :param since: that ``If-Modified-Since``.
    :param lasts: ``UpdatedDateUTC`` of the last record of each page read (``None``: unreadable or empty).
    :param item_count: ``pagination.itemCount`` of the latest page.
    """

    since: datetime | None
    lasts: list[datetime | None] = field(default_factory=list)
    item_count: int | None = None

    def floor_after(self, page_index: int) -> datetime:
        """Return the recovery point for a skip at the boundary after page ``page_index`` of this segment."""
        last = self.lasts[page_index]
        if last is not None:
            return truncate_to_second(last)
        return self.since or BEGINNING


class Pager:
    """Plan the requests of one paged read and check, without extra calls, that it skipped nothing.

    Call :meth:`first`, then for each answer :meth:`advance` (the next request of this pass, known at once
    so it can be sent while the page is handled) and :meth:`inspect` (the checks); when :meth:`advance`
    returned ``None``, :meth:`end_pass` says whether a recovery pass follows. See the module's notes.

    :param since: read records updated at or after this instant (truncated to the second), ``None``: all.
    :param page_size: records per page; a shorter page ends a pass.
    :param max_passes: passes (1 + recoveries) before giving up on data that keeps moving.
    :param where: names the read in the error raised after ``max_passes`` (``Xero Invoices (tenant …)``).
    """

    def __init__(
        self, since: datetime | None, page_size: int, *, max_passes: int = 5, where: str = "Xero read"
    ) -> None:
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1, got {page_size}")
        if max_passes < 1:
            raise ValueError(f"max_passes must be at least 1, got {max_passes}")
        self.since = truncate_to_second(since) if since is not None else None
        self.page_size = page_size
        self.max_passes = max_passes
        self.where = where
        self.pass_number = 1
        self._start_pass(self.since)

    def _start_pass(self, since: datetime | None) -> None:
        self._first_seen = FirstSeen()
        self._segments: list[_Segment] = [_Segment(since)]
        #: the instant a recovery pass must read again from, when this pass may have skipped a record
        self.recovery_since: datetime | None = None

    @property
    def by_key(self) -> bool:
        """Tell whether this pass moves its ``If-Modified-Since`` on after every page (recovery passes)."""
        return self.pass_number > 1

    def first(self) -> PageRequest:
        """Return the first request of the read."""
        return PageRequest(self.since, 1, 1)

    def advance(
        self, request: PageRequest, cursors: Sequence[tuple[Any, Any]], pagination: Mapping[str, Any]
    ) -> PageRequest | None:
        """Record the answer to ``request``; return the next request of this pass, or ``None`` if it ended.

        :param request: the request answered.
        :param cursors: ``(id, UpdatedDateUTC)`` of each record of the page, in the order served.
        :param pagination: the page's ``pagination`` object (``{}`` when absent).
        """
        segment = self._segments[-1]
        segment.lasts.append(parse_updated(cursors[-1][1]) if cursors else None)
        page_count = as_int(pagination.get("pageCount"))
        if len(cursors) < self.page_size or (page_count is not None and request.page >= page_count):
            return None
        if self.by_key:
            boundary = segment.lasts[-1]
            if boundary is not None:
                boundary = truncate_to_second(boundary)
                if request.since is None or boundary > request.since:
                    self._segments.append(_Segment(boundary))
                    return PageRequest(boundary, 1, self.pass_number)
        return PageRequest(request.since, request.page + 1, self.pass_number)

    def inspect(self, cursors: Sequence[tuple[Any, Any]], pagination: Mapping[str, Any]) -> None:
        """Check the page last passed to :meth:`advance` for moves and removals (see the module's notes)."""
        floors: list[datetime] = []
        segment = self._segments[-1] if self._segments[-1].lasts else self._segments[-2]
        count = as_int(pagination.get("itemCount"))
        if count is not None and segment.item_count is not None and count < segment.item_count:
            floors.append(
                segment.floor_after(len(segment.lasts) - 2)
            )  # a record left: skip after the last read
        if count is not None:
            segment.item_count = count
        present = [(record_id, cursor) for record_id, cursor in cursors if record_id is not None]
        keys = [id_key(record_id) for record_id, _ in present]
        seen_here: dict[int, datetime | None] = {}
        for key, (_, cursor), original in zip(keys, present, self._first_seen.find(keys), strict=True):
            updated = parse_updated(cursor)
            if original is NOT_SEEN:
                seen_here.setdefault(key, updated)
            elif not (isinstance(original, datetime) and original == updated):
                floor = self._floor_of_move(original if isinstance(original, datetime) else None)
                if floor is not None:
                    floors.append(floor)
        for key, updated in seen_here.items():
            self._first_seen.add(key, updated)
        if floors:
            lowest = min(floors)
            self.recovery_since = lowest if self.recovery_since is None else min(self.recovery_since, lowest)

    def _floor_of_move(self, original: datetime | None) -> datetime | None:
        """Return where a record that moved (first read with ``original``) may have made the pass skip.

        A move skips only at a boundary between two pages of one segment, after the page the record was
        read on; in a key read most segments are one page and nothing can be skipped.
        """
        floors: list[datetime] = []
        for segment in self._segments:
            crossed = len(segment.lasts) - 1  # boundaries crossed: after each page but the segment's last
            if crossed < 1:
                continue
            if original is None:
                floors.append(segment.since or BEGINNING)
                continue
            if segment.since is not None and original < segment.since:
                continue  # the record was not in this segment's set: its move shifted nothing there
            for index in range(crossed):
                last = segment.lasts[index]
                if last is None or last >= original:
                    floors.append(segment.floor_after(index))
                    break
        return min(floors) if floors else None

    def end_pass(self) -> PageRequest | None:
        """Return the first request of a recovery pass when this pass may have skipped records, else ``None``.

        :raises XeroPagingError: when ``max_passes`` passes all may have skipped records.
        """
        recovery = self.recovery_since
        if recovery is None:
            return None
        if self.pass_number >= self.max_passes:
            raise XeroPagingError(
                f"{self.where}: records kept changing during {self.max_passes} paging passes; giving up rather "
                "than returning incomplete data (re-run later)"
            )
        if self.since is not None:
            recovery = max(recovery, self.since)
        since = None if recovery == BEGINNING else recovery
        self.pass_number += 1
        self._start_pass(since)
        return PageRequest(since, 1, self.pass_number)


__all__ = ["BEGINNING", "PageRequest", "Pager", "as_int", "parse_updated", "truncate_to_second"]
