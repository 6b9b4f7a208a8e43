"""The one place the code asks for the time.

Holding periods, attribution windows and payout schedules all depend on "now", so services
call `clock.now()` instead of `datetime.now()`. Tests and `marketplace demo` move it forward
with `clock.advance(...)`; production has no endpoint that moves it.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class Clock:
    def __init__(self) -> None:
        self._offset = timedelta(0)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """Timezone-aware UTC now, shifted by any offset a test or the demo applied."""
        return datetime.now(UTC) + self._offset

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._offset += delta

    def reset(self) -> None:
        with self._lock:
            self._offset = timedelta(0)


clock = Clock()


def as_utc(value: datetime) -> datetime:
    """SQLite returns naive datetimes; we store UTC everywhere, so naive means UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
