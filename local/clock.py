"""Clocks on the embedded default: the system's time in Lima, and a fixed one for tests and CLAQUETA_NOW."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

LIMA = ZoneInfo("America/Lima")


def in_lima(moment: datetime) -> datetime:
    """A naive time is read as Lima's; an aware one is converted."""
    return moment.replace(tzinfo=LIMA) if moment.tzinfo is None else moment.astimezone(LIMA)


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(LIMA)


class FixedClock:
    """Stands still until told otherwise, so deadlines and reminders can be tried day by day."""

    def __init__(self, moment: datetime) -> None:
        self._now = in_lima(moment)

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = in_lima(moment)

    def advance(self, delta: timedelta | None = None, **parts: float) -> datetime:
        """Move forward by `delta` or by timedelta keywords (days=1, hours=2); returns the new time."""
        self._now = self._now + (delta or timedelta()) + timedelta(**parts)
        return self._now
