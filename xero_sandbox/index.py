"""Ordered record index of one collection: ids, UpdatedDateUTC and the default sort kept current.

Records live as positions ``0..n-1`` in columnar arrays. The index keeps the positions sorted by
``(UpdatedDateUTC, ID)`` ascending, Xero's default order, so a page costs a binary search plus a
slice. A change moves one position (an O(n) memmove, no re-sort).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

_VERSION_MASK = np.uint64(~np.uint64(0xF000) & np.uint64(0xFFFFFFFFFFFFFFFF))
_VERSION_4 = np.uint64(0x4000)
_VARIANT_MASK = np.uint64(0x3FFFFFFFFFFFFFFF)
_VARIANT_RFC = np.uint64(0x8000000000000000)


def random_uuids(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Return ``n`` version-4 UUIDs as (high, low) uint64 halves drawn from ``rng``."""
    hi = rng.integers(0, 2**64, size=n, dtype=np.uint64, endpoint=False)
    lo = rng.integers(0, 2**64, size=n, dtype=np.uint64, endpoint=False)
    hi = (hi & _VERSION_MASK) | _VERSION_4
    lo = (lo & _VARIANT_MASK) | _VARIANT_RFC
    return hi, lo


def uuid_text(hi: int, lo: int) -> str:
    """Format two uint64 halves as a lower-case UUID string."""
    h = f"{int(hi):016x}{int(lo):016x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def uuid_texts(hi: np.ndarray, lo: np.ndarray) -> list[str]:
    """Format arrays of uint64 halves as lower-case UUID strings (one hex conversion for the batch)."""
    digits = np.column_stack((hi, lo)).astype(">u8").tobytes().hex()
    return [
        f"{digits[k : k + 8]}-{digits[k + 8 : k + 12]}-{digits[k + 12 : k + 16]}-{digits[k + 16 : k + 20]}-"
        f"{digits[k + 20 : k + 32]}"
        for k in range(0, len(digits), 32)
    ]


def uuid_halves(text: str) -> tuple[int, int] | None:
    """Parse a UUID string into (high, low) halves, or ``None`` if it is not a UUID."""
    try:
        value = uuid.UUID(text.strip().strip('"')).int
    except (ValueError, AttributeError):
        return None
    return value >> 64, value & 0xFFFFFFFFFFFFFFFF


@dataclass
class Selection:
    """The matching positions of a query, in default order.

    :param index: the index queried.
    :param start: first matching offset in the index order (unfiltered queries).
    :param positions: the explicit matching positions (filtered queries), else ``None``.
    """

    index: RecordIndex
    start: int
    positions: np.ndarray | None

    @property
    def total(self) -> int:
        """Return the number of matching records."""
        if self.positions is not None:
            return len(self.positions)
        return self.index.n - self.start

    def slice(self, offset: int, size: int) -> np.ndarray:
        """Return record positions ``offset .. offset+size`` of the selection."""
        if self.positions is not None:
            return self.positions[offset : offset + size]
        begin = self.start + offset
        return self.index.order[begin : begin + size]


class RecordIndex:
    """Identifiers and the ``(UpdatedDateUTC, ID)`` order of one collection.

    :param hi: high halves of the record ids (uint64).
    :param lo: low halves of the record ids (uint64).
    :param updated_ms: UpdatedDateUTC in Unix milliseconds (int64); owned and updated by the index.
    """

    def __init__(self, hi: np.ndarray, lo: np.ndarray, updated_ms: np.ndarray) -> None:
        self.hi = hi
        self.lo = lo
        self.updated_ms = updated_ms
        self.order = np.lexsort((lo, hi, updated_ms)).astype(np.int64)
        self.sorted_ms = updated_ms[self.order]
        self._by_id = np.lexsort((lo, hi))
        self._hi_sorted = hi[self._by_id]

    @property
    def n(self) -> int:
        """Return the number of records."""
        return len(self.hi)

    def id_of(self, pos: int) -> str:
        """Return the id string of the record at ``pos``."""
        return uuid_text(self.hi[pos], self.lo[pos])

    def find(self, text: str) -> int | None:
        """Return the position of the record with id ``text``, or ``None``."""
        halves = uuid_halves(text)
        if halves is None:
            return None
        hi, lo = np.uint64(halves[0]), np.uint64(halves[1])
        j = int(np.searchsorted(self._hi_sorted, hi, side="left"))
        while j < len(self._hi_sorted) and self._hi_sorted[j] == hi:
            pos = int(self._by_id[j])
            if self.lo[pos] == lo:
                return pos
            j += 1
        return None

    def _rank(self, pos: int) -> int:
        ms = self.updated_ms[pos]
        a = int(np.searchsorted(self.sorted_ms, ms, side="left"))
        b = int(np.searchsorted(self.sorted_ms, ms, side="right"))
        hits = np.flatnonzero(self.order[a:b] == pos)
        return a + int(hits[0])

    def touch(self, pos: int, updated_ms: int) -> None:
        """Set the record's UpdatedDateUTC and move it to its place in the default order."""
        rank = self._rank(pos)
        order = np.delete(self.order, rank)
        sorted_ms = np.delete(self.sorted_ms, rank)
        self.updated_ms[pos] = updated_ms
        a = int(np.searchsorted(sorted_ms, updated_ms, side="left"))
        b = int(np.searchsorted(sorted_ms, updated_ms, side="right"))
        key = (int(self.hi[pos]), int(self.lo[pos]))
        insert_at = b
        for k in range(a, b):
            other = int(order[k])
            if (int(self.hi[other]), int(self.lo[other])) > key:
                insert_at = k
                break
        self.order = np.insert(order, insert_at, pos)
        self.sorted_ms = np.insert(sorted_ms, insert_at, updated_ms)

    def select(
        self, since_ms: int | None = None, mask: Callable[[np.ndarray], np.ndarray] | None = None
    ) -> Selection:
        """Return the records updated at or after ``since_ms`` that pass ``mask``, in default order.

        :param since_ms: lower bound on UpdatedDateUTC in ms (inclusive), or ``None`` for all.
        :param mask: vectorised predicate over record positions (True keeps the record).
        """
        start = 0 if since_ms is None else int(np.searchsorted(self.sorted_ms, since_ms, side="left"))
        if mask is None:
            return Selection(self, start, None)
        candidates = self.order[start:]
        return Selection(self, start, candidates[mask(candidates)])

    def in_order(self) -> np.ndarray:
        """Return every position in default order (a copy)."""
        return self.order.copy()
