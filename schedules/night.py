"""The night of a date: when the lamps go on in the evening and off the next morning.

The night of date D runs from the evening of D to the morning of D+1 in the site's time zone.
Where the sun does not cross the switching elevation (polar night or polar day, or a summer
night too bright for a twilight threshold far north), the night says so, and the rule says
what the lamps do then: by default on all night in polar night, off in polar day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

from schedules.solar import SUNRISE_SUNSET_ELEVATION, Direction, Polar, Site, crossing

PolarAction = Literal["on", "off"]


@dataclass(frozen=True, slots=True)
class NightRule:
    """When a night starts and ends: an offset to sunset/sunrise, or a sun elevation."""

    on_offset_min: float = 0.0
    on_elevation_deg: float | None = None
    off_offset_min: float = 0.0
    off_elevation_deg: float | None = None
    polar_night: PolarAction = "on"
    polar_day: PolarAction = "off"


@dataclass(frozen=True, slots=True)
class Night:
    """One night's sun events and switching window; `on_at`/`off_at` None means no window."""

    date: date
    sunset: datetime | None
    sunrise: datetime | None
    on_at: datetime | None
    off_at: datetime | None
    note: str | None = None


def _edge(
    site: Site,
    day: date,
    offset_min: float,
    elevation: float | None,
    direction: Direction,
    *,
    event: datetime | Polar,
) -> datetime | Polar:
    """A night edge: `event` (that day's sunset or sunrise) plus an offset, or an elevation."""
    if elevation is not None:
        return crossing(site, day, elevation, direction)
    if isinstance(event, Polar):
        return event
    # in UTC: aware datetimes of one zone add in wall-clock time, wrong across a DST change
    return (event.astimezone(UTC) + timedelta(minutes=offset_min)).astimezone(site.tz)


def _local_noon(site: Site, day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=site.tz)


def night_of(site: Site, day: date, rule: NightRule) -> Night:
    """The night that starts on the evening of `day`, with its switching window by `rule`."""
    morning = day + timedelta(days=1)
    sunset = crossing(site, day, SUNRISE_SUNSET_ELEVATION, Direction.SETTING)
    sunrise = crossing(site, morning, SUNRISE_SUNSET_ELEVATION, Direction.RISING)
    on_at = _edge(
        site, day, rule.on_offset_min, rule.on_elevation_deg, Direction.SETTING, event=sunset
    )
    off_at = _edge(
        site, morning, rule.off_offset_min, rule.off_elevation_deg, Direction.RISING, event=sunrise
    )
    events = (
        sunset if isinstance(sunset, datetime) else None,
        sunrise if isinstance(sunrise, datetime) else None,
    )
    if isinstance(on_at, datetime) and isinstance(off_at, datetime):
        return Night(day, *events, on_at, off_at)
    polar_kinds = {edge.kind for edge in (on_at, off_at) if isinstance(edge, Polar)}
    if "day" in polar_kinds:
        if rule.polar_day == "off":
            return Night(
                day,
                *events,
                None,
                None,
                note="polar day: the sun does not go down far enough; lamps off",
            )
        return Night(
            day,
            *events,
            _local_noon(site, day),
            _local_noon(site, morning),
            note="polar day: lamps on by config",
        )
    if rule.polar_night == "off":
        return Night(
            day, *events, None, None, note="polar night: the sun does not rise; lamps off by config"
        )
    # Polar night: the missing edges move to local noon, so consecutive nights join up.
    start = on_at if isinstance(on_at, datetime) else _local_noon(site, day)
    end = off_at if isinstance(off_at, datetime) else _local_noon(site, morning)
    return Night(
        day, *events, start, end, note="polar night: the sun does not rise; lamps on all night"
    )


def night_date_at(site: Site, when: datetime) -> date:
    """The date whose night `when` belongs to: before local noon it is the previous evening's."""
    local = when.astimezone(site.tz)
    return local.date() if local.time() >= time(12) else local.date() - timedelta(days=1)
