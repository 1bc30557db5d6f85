"""The sun, through astral, in one module: events as values, polar day and night as values.

Nothing here raises for a place where the sun does not set or rise: such a day comes back as a
`Polar` result, so no astral `ValueError` can reach the control loop. Each crossing is looked
for in the half-day where the sun only goes down (solar noon to solar midnight) or only up:
astral's formula first, asked for the UTC days around it (astral 3.2 skips an event near
00:00 UTC once a year at some Thai sites), then a bisection on the sun's elevation, so a
crossing exists exactly when the sun really passes that elevation.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
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
    """The sun's centre crossing `elevation_deg` around `local_day`, in the site's time zone.

    SETTING is the crossing after `local_day`'s solar noon (before the next solar midnight:
    far north in summer that can be after local midnight); RISING is the one before its
    solar noon. Geometric elevation (no refraction): -0.833 is sunset/sunrise as almanacs
    define them, -6 civil twilight. Returns Polar when the sun does not cross it then.
    """
    start, end = _half_day(site, local_day, direction)
    zenith_deg = 90.0 - elevation_deg
    astral_direction = (
        SunDirection.SETTING if direction is Direction.SETTING else SunDirection.RISING
    )
    middle = (start + (end - start) / 2).date()
    for day in (middle, middle - timedelta(days=1), middle + timedelta(days=1)):
        try:
            event = time_of_transit(
                site.observer, day, zenith_deg, astral_direction, with_refraction=False
            )
        except ValueError:  # "math domain error": astral sees no crossing that UTC day
            continue
        if start <= event <= end:
            return event.astimezone(site.tz)
    # astral found none in the half-day (its date handling skips some): search it ourselves
    first, last = sun_elevation(site, start), sun_elevation(site, end)
    high, low = (first, last) if direction is Direction.SETTING else (last, first)
    if high <= elevation_deg:
        return Polar("night")
    if low >= elevation_deg:
        return Polar("day")
    return _bisect(site, start, end, elevation_deg, falling=direction is Direction.SETTING)


@functools.lru_cache(maxsize=1024)
def solar_noon(site: Site, local_day: date) -> datetime:
    """When the sun is highest on `local_day` (UTC)."""
    observer = site.observer
    for shift in (0, -1, 1):
        moment = noon(observer, local_day + timedelta(days=shift))
        if moment.astimezone(site.tz).date() == local_day:
            return moment
    return noon(observer, local_day)


def _half_day(site: Site, local_day: date, direction: Direction) -> tuple[datetime, datetime]:
    """From solar noon to the next solar midnight (SETTING), or from the previous solar
    midnight to solar noon (RISING): the sun only goes down, or only up, in between."""
    today = solar_noon(site, local_day)
    if direction is Direction.SETTING:
        return today, today + (solar_noon(site, local_day + timedelta(days=1)) - today) / 2
    yesterday = solar_noon(site, local_day - timedelta(days=1))
    return yesterday + (today - yesterday) / 2, today


def _bisect(
    site: Site, start: datetime, end: datetime, elevation_deg: float, *, falling: bool
) -> datetime:
    """The moment in [start, end] the elevation passes `elevation_deg`, to within a second."""
    while (end - start) > timedelta(seconds=1):
        middle = start + (end - start) / 2
        above = sun_elevation(site, middle) > elevation_deg
        if above == falling:
            start = middle
        else:
            end = middle
    return (start + (end - start) / 2).astimezone(site.tz)


def sunset(site: Site, local_day: date) -> datetime | Polar:
    """Sunset on `local_day` (upper limb on the horizon, standard refraction)."""
    return crossing(site, local_day, SUNRISE_SUNSET_ELEVATION, Direction.SETTING)


def sunrise(site: Site, local_day: date) -> datetime | Polar:
    """Sunrise on `local_day` (upper limb on the horizon, standard refraction)."""
    return crossing(site, local_day, SUNRISE_SUNSET_ELEVATION, Direction.RISING)


def sun_elevation(site: Site, when: datetime) -> float:
    """The geometric elevation of the sun's centre at `when` (an aware datetime), in degrees."""
    return 90.0 - zenith(site.observer, when.astimezone(UTC), with_refraction=False)
