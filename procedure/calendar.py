"""Peruvian working days: weekends and Peru's public holidays (the `holidays` package) are not counted."""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

import holidays


@lru_cache(maxsize=64)
def _holidays_of(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("PE", years=year).keys())


def holiday_name(day: date) -> str | None:
    return holidays.country_holidays("PE", years=day.year, language="es").get(day)


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in _holidays_of(day.year)


# Both counts are pure functions of their dates, and the deadline rules ask the same few pairs for every
# open request (the day a step opened, today): caching them turns thousands of day-by-day walks into lookups.
@lru_cache(maxsize=65_536)
def add_working_days(start: date, days: int) -> date:
    """The working day `days` working days after `start` (0: `start` itself, or the next working day)."""
    current = start
    while not is_working_day(current):
        current += timedelta(days=1)
    remaining = days
    while remaining > 0:
        current += timedelta(days=1)
        if is_working_day(current):
            remaining -= 1
    return current


@lru_cache(maxsize=65_536)
def working_days_between(start: date, end: date) -> int:
    """Working days after `start` up to and including `end`; negative when `end` is before `start`."""
    if end < start:
        return -working_days_between(end, start)
    count = 0
    current = start
    while current < end:
        current += timedelta(days=1)
        if is_working_day(current):
            count += 1
    return count
