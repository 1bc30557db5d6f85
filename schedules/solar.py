"""The sun, through astral, in one module: events as values, polar day and night as values.

Nothing here raises for a place where the sun does not set or rise: such a day comes back as a
`Polar` result, so no astral `ValueError` can reach the control loop. Astral 3.2 also skips an
event that falls near 00:00 UTC ("Unable to find a sunrise time", once a year at some Thai
sites); `crossing()` asks astral per UTC day and picks the event on the wanted local date, and
interpolates between the neighbouring days when astral still produces none.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import Enum
from typing import Literal

from astral import Observer, SunDirection
from astral.sun import noon, time_of_transit, zenith

# The sun's upper limb on the horizon with standard refraction: its centre 0.833 deg below.
SUNRISE_SUNSET_ELEVATION = -0.833
CIVIL_TWILIGHT_ELEVATION = -6.0


class Direction(Enum):
    """Whether the sun is going down (evening) or coming up (morning)."""

    SETTING = "setting"
    RISING = "rising"


@dataclass(frozen=True, slots=True)
class Site:
    """Where a unit stands: degrees north and east, and its time zone."""

    latitude: float
    longitude: float
    tz: tzinfo

    @property
    def observer(self) -> Observer:
        """The astral observer at sea level for this site."""
        return _observer(self.latitude, self.longitude)


@functools.lru_cache(maxsize=64)
def _observer(latitude: float, longitude: float) -> Observer:
    return Observer(latitude=latitude, longitude=longitude, elevation=0.0)


@dataclass(frozen=True, slots=True)
class Polar:
    """No crossing of the elevation that day: the sun stays above it ('day') or below ('night')."""

    kind: Literal["day", "night"]


@functools.lru_cache(maxsize=4096)  # profiles that differ only in offsets share their sun
def crossing(
    site: Site, local_day: date, elevation_deg: float, direction: Direction
) -> datetime | Polar:
    """When the sun's centre crosses `elevation_deg` on `local_day`, in the site's time zone.

    Geometric elevation (no refraction): -0.833 is sunset/sunrise as almanacs define them,
    -6 civil twilight. Returns Polar when the sun does not cross that elevation that day.
    """
    observer = site.observer
    astral_direction = (
        SunDirection.SETTING if direction is Direction.SETTING else SunDirection.RISING
    )
    found = _crossing_on(site, observer, local_day, elevation_deg, astral_direction)
    if found is not None:
        return found
    # astral produced no event on that local date, though the sun does cross: interpolate.
    before = _crossing_on(
        site, observer, local_day - timedelta(days=1), elevation_deg, astral_direction
    )
    after = _crossing_on(
        site, observer, local_day + timedelta(days=1), elevation_deg, astral_direction
    )
    if before is not None and after is not None:
        return (before + (after - before) / 2).astimezone(site.tz)
    return Polar(_polar_kind(site, observer, local_day, elevation_deg))


def _crossing_on(
    site: Site, observer: Observer, local_day: date, elevation_deg: float, direction: SunDirection
) -> datetime | None:
    """astral's event computed for the UTC days around `local_day` that lands on `local_day`."""
    zenith_deg = 90.0 - elevation_deg
    for shift in _likely_shifts(site, local_day, direction):
        try:
            event = time_of_transit(
                observer,
                local_day + timedelta(days=shift),
                zenith_deg,
                direction,
                with_refraction=False,
            )
        except ValueError:  # "math domain error": no crossing that day
            return None
        local = event.astimezone(site.tz)
        if local.date() == local_day:
            return local
    return None


def _likely_shifts(site: Site, local_day: date, direction: SunDirection) -> tuple[int, int, int]:
    """The UTC days to ask astral for, most likely first: in UTC+7 a 06:00 sunrise is the
    previous UTC day, so asking for that day first saves an astral call per event."""
    offset = site.tz.utcoffset(datetime.combine(local_day, time(12)))
    hours = offset.total_seconds() / 3600 if offset is not None else 0.0
    local_hour = 6.0 if direction == SunDirection.RISING else 18.0
    likely = math.floor((local_hour - hours) / 24)
    return (likely, *(s for s in (0, -1, 1) if s != likely))  # type: ignore[return-value]


def _polar_kind(
    site: Site, observer: Observer, local_day: date, elevation_deg: float
) -> Literal["day", "night"]:
    midday = noon(observer, local_day, tzinfo=site.tz)
    sun_at_noon = 90.0 - zenith(observer, midday.astimezone(UTC), with_refraction=False)
    return "day" if sun_at_noon > elevation_deg else "night"


def sunset(site: Site, local_day: date) -> datetime | Polar:
    """Sunset on `local_day` (upper limb on the horizon, standard refraction)."""
    return crossing(site, local_day, SUNRISE_SUNSET_ELEVATION, Direction.SETTING)


def sunrise(site: Site, local_day: date) -> datetime | Polar:
    """Sunrise on `local_day` (upper limb on the horizon, standard refraction)."""
    return crossing(site, local_day, SUNRISE_SUNSET_ELEVATION, Direction.RISING)


def sun_elevation(site: Site, when: datetime) -> float:
    """The geometric elevation of the sun's centre at `when` (an aware datetime), in degrees."""
    return 90.0 - zenith(site.observer, when.astimezone(UTC), with_refraction=False)
