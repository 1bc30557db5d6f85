"""Dated exceptions to the profile: festival nights at full light, maintenance nights off.

An entry applies to the *night* of a date (the evening of that date to the next morning), for
the zones and groups it names (all zones when it names none). Dates are written as

- `2026-11-24`: one date;
- `2026-12-24..2027-01-02`: a range, both ends included;
- `04-13`, `04-13..04-15`, `12-30..01-02`: the same date or range every year (a yearly range
  may run over the new year; one that ends before it starts within a month is a mistake);

and `weekdays` (`mon` ... `sun`) narrows an entry to those days of the week, or on its own
makes a weekly rule. When several entries match a night, the last one in the file wins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_FULL = r"\d{4}-\d{2}-\d{2}"
_YEARLY = r"\d{2}-\d{2}"


class DateRuleError(ValueError):
    """A calendar date that does not follow the date syntax."""


@dataclass(frozen=True, slots=True)
class DateRule:
    """One date or range, either of one year or of every year."""

    first: tuple[int, int, int]  # (year or 0 for every year, month, day)
    last: tuple[int, int, int]

    def matches(self, day: date) -> bool:
        """Whether `day` falls in this date or range."""
        if self.first[0]:
            return date(*self.first) <= day <= date(*self.last)
        key = (day.month, day.day)
        first, last = self.first[1:], self.last[1:]
        if first <= last:
            return first <= key <= last
        return key >= first or key <= last  # wraps over the new year


def _parse_one(text: str, yearly: bool) -> tuple[int, int, int]:
    parts = [int(p) for p in text.split("-")]
    year, month, day = (0, *parts) if yearly else parts
    if not yearly and year < 1:
        raise DateRuleError(f"{text!r} is not a date: years start at 0001")
    try:
        date(year or 2024, month, day)  # 2024 is a leap year: 02-29 is a valid yearly date
    except ValueError as exc:
        raise DateRuleError(f"{text!r} is not a date: {exc}") from None
    return (year, month, day)


def parse_date_rule(text: str) -> DateRule:
    """Parse `2026-11-24`, `2026-12-24..2027-01-02`, `04-13` or `04-13..04-15`."""
    text = text.strip()
    for pattern, yearly in ((_FULL, False), (_YEARLY, True)):
        match = re.fullmatch(rf"({pattern})(?:\.\.({pattern}))?", text)
        if match:
            first = _parse_one(match[1], yearly)
            last = _parse_one(match[2], yearly) if match[2] else first
            if last < first and (not yearly or last[1] >= first[1]):
                raise DateRuleError(
                    f"{text!r}: the range ends before it starts (a yearly range may run over "
                    "the new year, like 12-30..01-02)"
                )
            return DateRule(first, last)
    raise DateRuleError(
        f"{text!r} is not a calendar date: write 2026-11-24, 2026-12-24..2027-01-02, or "
        "04-13 and 04-13..04-15 for every year"
    )


@dataclass(frozen=True, slots=True)
class CalendarEntry:
    """An exception for some nights: a fixed level all night, or another profile."""

    name: str
    dates: tuple[DateRule, ...] = ()
    weekdays: frozenset[int] = frozenset()  # 0 = Monday
    zones: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    level: int | None = None
    profile: str | None = None

    def applies(self, zone_id: str, zone_groups: frozenset[str], night: date) -> bool:
        """Whether this entry covers the zone on the night of `night`."""
        # cheapest test first: this runs for every entry, zone and night of a year's plan
        if self.weekdays and night.weekday() not in self.weekdays:
            return False
        if self.dates and not any(rule.matches(night) for rule in self.dates):
            return False
        scoped = bool(self.zones or self.groups)
        return not scoped or zone_id in self.zones or bool(self.groups & zone_groups)


def entry_for(
    entries: tuple[CalendarEntry, ...], zone_id: str, zone_groups: frozenset[str], night: date
) -> CalendarEntry | None:
    """The calendar entry that governs the zone's night of `night`: the last that applies."""
    for entry in reversed(entries):
        if entry.applies(zone_id, zone_groups, night):
            return entry
    return None
