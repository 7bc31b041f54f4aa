"""The sandbox's controllable clock: real time plus an offset, or frozen at an instant."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime


class Clock:
    """A UTC clock that tests can move forward instead of sleeping.

    By default it follows real time plus an offset; :meth:`freeze` stops it at an instant and
    :meth:`advance` moves it (frozen or not).

    :param start: the instant ``now()`` returns at construction (``None``: real time).
    :param frozen: stay at ``start`` until advanced.
    """

    def __init__(self, start: datetime | None = None, *, frozen: bool = False) -> None:
        self._lock = threading.Lock()
        self._frozen_at: float | None = None
        self._offset = 0.0
        if start is not None:
            self._offset = _epoch(start) - time.time()
        if frozen:
            self._frozen_at = time.time() + self._offset

    def timestamp(self) -> float:
        """Return the current instant as Unix seconds."""
        with self._lock:
            if self._frozen_at is not None:
                return self._frozen_at
            return time.time() + self._offset

    def now(self) -> datetime:
        """Return the current instant as an aware UTC datetime."""
        return datetime.fromtimestamp(self.timestamp(), tz=UTC)

    def now_ms(self) -> int:
        """Return the current instant in Unix milliseconds."""
        return int(self.timestamp() * 1000)

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward by ``seconds`` and return the new now."""
        with self._lock:
            if self._frozen_at is not None:
                self._frozen_at += seconds
            else:
                self._offset += seconds
        return self.now()

    def set(self, instant: datetime) -> None:
        """Jump to ``instant`` (frozen clocks stay frozen there)."""
        with self._lock:
            if self._frozen_at is not None:
                self._frozen_at = _epoch(instant)
            else:
                self._offset = _epoch(instant) - time.time()

    def freeze(self) -> None:
        """Stop the clock at the current instant."""
        now = self.timestamp()
        with self._lock:
            self._frozen_at = now

    def unfreeze(self) -> None:
        """Let the clock run again from where it stands."""
        with self._lock:
            if self._frozen_at is not None:
                self._offset = self._frozen_at - time.time()
                self._frozen_at = None


def _epoch(instant: datetime) -> float:
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return instant.timestamp()
