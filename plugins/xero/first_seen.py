"""The paging checks' memory of one pass: each record's first ``UpdatedDateUTC``, in about 16 bytes a record.

:class:`xero.paging.Pager` must recognise a record it already read in the same pass (a
record that moved between pages) and know the instant it was first read at. A dict of id strings to
datetimes costs about 200 bytes a record (200 MB for a pass over 1,000,000 invoices); :class:`FirstSeen`
keeps a 64-bit hash of each id and the instant as epoch microseconds in two sorted NumPy arrays, with the
latest additions in a small dict until there are enough of them to merge.

Two ids sharing a hash (a chance of about n² / 2⁶⁵ in a pass of n records: 3 in 100 million at 1,000,000)
make the later one look like a record read before. If its instant differs, that may cost one recovery
pass; it never hides a move, which would need the two to share the instant as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np

#: Ids held in the dict before they are merged into the sorted arrays.
MERGE_AT = 65_536

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
#: Stored for a record read without a readable ``UpdatedDateUTC``.
_NO_INSTANT = np.iinfo(np.int64).min
#: Never stored: marks an id not seen yet (:meth:`FirstSeen.find`).
NOT_SEEN = object()


def id_key(record_id: object) -> int:
    """Return the 64-bit key of a record id (the hash of its text: stable within one process)."""
    return hash(str(record_id))


def _encode(instant: datetime | None) -> int:
    return _NO_INSTANT if instant is None else (instant - _EPOCH) // _MICROSECOND


def _decode(value: int) -> datetime | None:
    return None if value == _NO_INSTANT else _EPOCH + timedelta(microseconds=value)


class FirstSeen:
    """Id key (:func:`id_key`) → the ``UpdatedDateUTC`` the record was first read with in this pass."""

    def __init__(self, merge_at: int = MERGE_AT) -> None:
        self._keys = np.empty(0, dtype=np.int64)  # sorted
        self._instants = np.empty(0, dtype=np.int64)
        self._recent: dict[int, int] = {}
        self._merge_at = merge_at

    def __len__(self) -> int:
        return len(self._keys) + len(self._recent)

    def find(self, keys: Sequence[int]) -> list[object]:
        """Return, for each key, the instant it was first seen with (``None``: none), or :data:`NOT_SEEN`."""
        found: list[object] = [NOT_SEEN] * len(keys)
        if len(self._keys) and len(keys):
            wanted = np.fromiter(keys, dtype=np.int64, count=len(keys))
            places = np.searchsorted(self._keys, wanted).clip(max=len(self._keys) - 1)
            for index in np.flatnonzero(self._keys[places] == wanted).tolist():
                found[index] = _decode(int(self._instants[places[index]]))
        if self._recent:
            for index, key in enumerate(keys):
                value = self._recent.get(key)
                if value is not None:
                    found[index] = _decode(value)
        return found

    def add(self, key: int, instant: datetime | None) -> None:
        """Remember ``key`` (not seen before) as first read with ``instant``."""
        self._recent[key] = _encode(instant)
        if len(self._recent) >= self._merge_at:
            self._merge()

    def _merge(self) -> None:
        keys = np.fromiter(self._recent.keys(), dtype=np.int64, count=len(self._recent))
        instants = np.fromiter(self._recent.values(), dtype=np.int64, count=len(self._recent))
        order = np.argsort(keys)
        keys, instants = keys[order], instants[order]
        places = np.searchsorted(self._keys, keys)
        self._keys = np.insert(self._keys, places, keys)
        self._instants = np.insert(self._instants, places, instants)
        self._recent = {}


__all__ = ["MERGE_AT", "NOT_SEEN", "FirstSeen", "id_key"]
