"""The sun as values: events on the wanted local date, polar days and nights, astral's skip."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import pytest

from schedules.solar import (
    CIVIL_TWILIGHT_ELEVATION,
    SUNRISE_SUNSET_ELEVATION,
    Direction,
    Polar,
    Site,
    crossing,
    solar_noon,
    sun_elevation,
    sunrise,
    sunset,
)

BANGKOK = ZoneInfo("Asia/Bangkok")
SAKON_NAKHON = Site(17.155, 104.147, BANGKOK)
CHIANG_MAI = Site(18.79, 98.98, BANGKOK)
MAE_HONG_SON = Site(19.30, 97.97, BANGKOK)
BERLIN = Site(52.52, 13.40, ZoneInfo("Europe/Berlin"))
SYDNEY = Site(-33.87, 151.21, ZoneInfo("Australia/Sydney"))
OSLO = Site(59.91, 10.75, ZoneInfo("Europe/Oslo"))
TROMSO = Site(69.65, 18.96, ZoneInfo("Europe/Oslo"))
LONGYEARBYEN = Site(78.22, 15.65, ZoneInfo("Arctic/Longyearbyen"))
MCMURDO = Site(-77.85, 166.67, ZoneInfo("Antarctica/McMurdo"))

# How far from the asked elevation a returned event may be. Near a grazing crossing (far
# north, the sun skimming the threshold) astral's time is minutes off, but the sun then
# moves so slowly that the elevation is still within a few tenths of a degree.
ELEVATION_TOLERANCE = 0.5


def _moment(value: datetime | Polar) -> datetime:
    assert isinstance(value, datetime), f"expected a time, got {value}"
    return value


def _seconds_of_day(moment: datetime) -> float:
    clock = moment.timetz()
    return clock.hour * 3600 + clock.minute * 60 + clock.second + clock.microsecond / 1e6


def _half_day(site: Site, day: date, direction: Direction) -> tuple[datetime, datetime]:
    """Where a crossing must lie: solar noon of `day` to the next solar midnight (setting), or
    the previous solar midnight to solar noon (rising). Far north in summer the evening one
    can fall after local midnight; it still belongs to the evening of `day`."""
    noon = solar_noon(site, day)
    if direction is Direction.SETTING:
        return noon, noon + (solar_noon(site, day + timedelta(days=1)) - noon) / 2
    before = solar_noon(site, day - timedelta(days=1))
    return before + (noon - before) / 2, noon


def _local_day_samples(site: Site, day: date, step_min: int = 15) -> list[float]:
    """The sun's elevation over the local day `day`, every `step_min` minutes."""
    start = datetime.combine(day, time(0), tzinfo=site.tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=site.tz).astimezone(UTC)
    count = int((end - start).total_seconds() // (step_min * 60))
    return [sun_elevation(site, start + timedelta(minutes=step_min * i)) for i in range(count + 1)]


def _half_day_samples(
    site: Site, day: date, direction: Direction, step_min: int = 15
) -> list[float]:
    """The sun's elevation over the crossing's half-day, every `step_min` minutes."""
    start, end = _half_day(site, day, direction)
    count = int((end - start).total_seconds() // (step_min * 60))
    return [
        sun_elevation(site, start + timedelta(minutes=step_min * i)) for i in range(count + 1)
    ] + [sun_elevation(site, end)]


def _problems(site: Site, day: date, elevation: float, direction: Direction) -> list[str]:
    """What is wrong with `crossing(site, day, elevation, direction)`, by the sun itself."""
    found = crossing(site, day, elevation, direction)
    where = f"({site.latitude}, {site.longitude}) {day} {elevation} {direction.value}: {found}"
    if isinstance(found, Polar):
        samples = _half_day_samples(site, day, direction)
        if found.kind == "day" and min(samples) < elevation - ELEVATION_TOLERANCE:
            return [f"{where} though the sun goes down to {min(samples):.2f}"]
        if found.kind == "night" and max(samples) > elevation + ELEVATION_TOLERANCE:
            return [f"{where} though the sun comes up to {max(samples):.2f}"]
        return []
    problems = []
    start, end = _half_day(site, day, direction)
    if not start <= found <= end:
        problems.append(f"{where} is not between {start} and {end}")
    actual = sun_elevation(site, found)
    if abs(actual - elevation) > ELEVATION_TOLERANCE:
        problems.append(f"{where} has the sun at {actual:.2f}")
    later = sun_elevation(site, found + timedelta(minutes=5))
    if (later < actual) != (direction is Direction.SETTING):
        problems.append(f"{where} has the sun moving the wrong way")
    return problems


# --------------------------------------------------------------------------------------------
# ordinary days


def test_site_observer_is_at_sea_level_at_the_site() -> None:
    observer = SAKON_NAKHON.observer
    assert (observer.latitude, observer.longitude, observer.elevation) == (17.155, 104.147, 0.0)


def test_sunset_and_sunrise_elevation_is_the_upper_limb_with_refraction() -> None:
    assert SUNRISE_SUNSET_ELEVATION == -0.833
    assert CIVIL_TWILIGHT_ELEVATION == -6.0
    assert sunset(SAKON_NAKHON, date(2026, 11, 21)) == crossing(
        SAKON_NAKHON, date(2026, 11, 21), -0.833, Direction.SETTING
    )
    assert sunrise(SAKON_NAKHON, date(2026, 11, 21)) == crossing(
        SAKON_NAKHON, date(2026, 11, 21), -0.833, Direction.RISING
    )


def test_sakon_nakhon_on_21_november_2026() -> None:
    """The library notes' example site and date, to the minute (local time, +07)."""
    day = date(2026, 11, 21)
    rise = _moment(sunrise(SAKON_NAKHON, day))
    fall = _moment(sunset(SAKON_NAKHON, day))
    assert rise.utcoffset() == timedelta(hours=7)
    assert rise.replace(tzinfo=None) == pytest.approx(
        datetime(2026, 11, 21, 6, 11), abs=timedelta(seconds=60)
    )
    assert fall.replace(tzinfo=None) == pytest.approx(
        datetime(2026, 11, 21, 17, 27), abs=timedelta(seconds=60)
    )


@pytest.mark.parametrize(
    ("site", "day"),
    [
        (SAKON_NAKHON, date(2026, 11, 21)),
        (BERLIN, date(2026, 3, 29)),  # spring-forward day
        (BERLIN, date(2026, 10, 25)),  # fall-back day
        (SYDNEY, date(2026, 10, 4)),  # spring-forward day down under
        (OSLO, date(2026, 6, 21)),
        (TROMSO, date(2026, 3, 20)),
    ],
    ids=["sakon-nakhon", "berlin-spring", "berlin-autumn", "sydney-spring", "oslo-june", "tromso"],
)
def test_events_are_local_times_on_the_wanted_date_with_the_sun_there(
    site: Site, day: date
) -> None:
    for direction in Direction:
        for elevation in (SUNRISE_SUNSET_ELEVATION, CIVIL_TWILIGHT_ELEVATION, 5.0):
            found = _moment(crossing(site, day, elevation, direction))
            assert found.tzinfo is site.tz
            if site is not OSLO:  # Oslo's June civil dusk is after midnight, still that evening's
                assert found.date() == day
            assert sun_elevation(site, found) == pytest.approx(elevation, abs=0.02)
            assert not _problems(site, day, elevation, direction)


def test_evening_goes_down_through_higher_elevations_first() -> None:
    day = date(2026, 11, 21)
    high, horizon, civil = (
        _moment(crossing(SAKON_NAKHON, day, elevation, Direction.SETTING))
        for elevation in (5.0, SUNRISE_SUNSET_ELEVATION, CIVIL_TWILIGHT_ELEVATION)
    )
    assert high < horizon < civil
    assert timedelta(minutes=15) < civil - horizon < timedelta(minutes=35)
    dawn, rise = (
        _moment(crossing(SAKON_NAKHON, day, elevation, Direction.RISING))
        for elevation in (CIVIL_TWILIGHT_ELEVATION, SUNRISE_SUNSET_ELEVATION)
    )
    assert dawn < rise < high


def test_sun_elevation_reads_aware_times_in_any_zone() -> None:
    moment = datetime(2026, 11, 21, 18, 0, tzinfo=BANGKOK)
    assert sun_elevation(SAKON_NAKHON, moment) == pytest.approx(
        sun_elevation(SAKON_NAKHON, moment.astimezone(UTC)), abs=1e-9
    )
    assert -10 < sun_elevation(SAKON_NAKHON, moment) < -5


# --------------------------------------------------------------------------------------------
# astral 3.2 skips an event near 00:00 UTC


@pytest.mark.parametrize(
    ("site", "day"),
    [(CHIANG_MAI, date(2026, 1, 22)), (MAE_HONG_SON, date(2026, 2, 9))],
    ids=["chiang-mai", "mae-hong-son"],
)
def test_sunrise_on_astral_skip_dates_is_on_that_date_near_its_neighbours(
    site: Site, day: date
) -> None:
    rise = _moment(sunrise(site, day))
    assert rise.date() == day
    assert rise.tzinfo is site.tz
    for neighbour in (day - timedelta(days=1), day + timedelta(days=1)):
        other = _moment(sunrise(site, neighbour))
        assert other.date() == neighbour
        assert abs(_seconds_of_day(rise) - _seconds_of_day(other)) < 60
    assert sun_elevation(site, rise) == pytest.approx(SUNRISE_SUNSET_ELEVATION, abs=0.1)


@pytest.mark.parametrize("site", [CHIANG_MAI, MAE_HONG_SON], ids=["chiang-mai", "mae-hong-son"])
def test_sunrise_every_day_near_00_utc_is_on_its_own_date_and_in_order(site: Site) -> None:
    days = [date(2026, 1, 1) + timedelta(days=k) for k in range(3 * 365)]
    rises = [_moment(sunrise(site, day)) for day in days]
    assert [rise.date() for rise in rises] == days
    gaps = [later - earlier for earlier, later in itertools.pairwise(rises)]
    # a day's sunrise moves by well under a minute from the day before at these latitudes
    assert all(abs(gap - timedelta(days=1)) < timedelta(seconds=60) for gap in gaps)


# --------------------------------------------------------------------------------------------
# polar day and night: values, never exceptions


@pytest.mark.parametrize(
    ("site", "day", "kind"),
    [
        (TROMSO, date(2026, 6, 21), "day"),
        (TROMSO, date(2026, 12, 21), "night"),
        (LONGYEARBYEN, date(2026, 6, 21), "day"),
        (LONGYEARBYEN, date(2026, 12, 21), "night"),
        (LONGYEARBYEN, date(2026, 1, 20), "night"),
        (MCMURDO, date(2026, 6, 21), "night"),
        (MCMURDO, date(2026, 12, 21), "day"),
    ],
)
def test_polar_sunrise_and_sunset_are_polar_values(
    site: Site, day: date, kind: Literal["day", "night"]
) -> None:
    assert sunrise(site, day) == Polar(kind)
    assert sunset(site, day) == Polar(kind)


def test_polar_night_still_has_civil_twilight_at_tromso() -> None:
    day = date(2026, 12, 21)
    dawn = _moment(crossing(TROMSO, day, CIVIL_TWILIGHT_ELEVATION, Direction.RISING))
    dusk = _moment(crossing(TROMSO, day, CIVIL_TWILIGHT_ELEVATION, Direction.SETTING))
    assert dawn < datetime.combine(day, time(12), tzinfo=TROMSO.tz) < dusk
    assert crossing(TROMSO, day, -12.0, Direction.SETTING) != Polar("night")


def test_a_summer_night_too_bright_for_civil_twilight_just_north_of_60() -> None:
    site = Site(61.0, 10.0, ZoneInfo("Europe/Oslo"))
    day = date(2026, 6, 21)
    assert crossing(site, day, CIVIL_TWILIGHT_ELEVATION, Direction.SETTING) == Polar("day")
    assert crossing(site, day, CIVIL_TWILIGHT_ELEVATION, Direction.RISING) == Polar("day")
    assert isinstance(sunset(site, day), datetime)


def test_an_elevation_the_sun_never_reaches_is_polar_night() -> None:
    # the winter sun at 60 N culminates at 6.6 deg: it never crosses 10 deg
    assert crossing(OSLO, date(2026, 12, 21), 10.0, Direction.SETTING) == Polar("night")


@pytest.mark.parametrize("site", [TROMSO, LONGYEARBYEN, MCMURDO], ids=["tromso", "lyr", "mcm"])
def test_no_day_of_the_year_raises_at_polar_sites(site: Site) -> None:
    for k in range(365):
        day = date(2026, 1, 1) + timedelta(days=k)
        for elevation in (SUNRISE_SUNSET_ELEVATION, CIVIL_TWILIGHT_ELEVATION, -12.0, 5.0):
            for direction in Direction:
                found = crossing(site, day, elevation, direction)
                assert isinstance(found, datetime | Polar)


@pytest.mark.parametrize(
    ("site", "day"),
    [
        # PyEphem: sunrise 11:58, sunset 12:27 local
        (LONGYEARBYEN, date(2026, 2, 15)),
        # astral has the sunrise for UTC day 08-19 (12:20 local) but the 08-18 one is asked
        # first since commit a25f0cc; before it this date was right
        (MCMURDO, date(2026, 8, 19)),
    ],
    ids=["longyearbyen", "mcmurdo"],
)
def test_the_first_sunrise_after_the_polar_night_is_not_polar_day(site: Site, day: date) -> None:
    # at local midnight the sun is more than 20 deg down: this is no polar day
    assert min(_local_day_samples(site, day)) < -20
    assert sunrise(site, day) != Polar("day")
    assert sunset(site, day) != Polar("day")


def test_tromso_sunset_that_slips_past_midnight_is_not_put_at_noon() -> None:
    assert not _problems(TROMSO, date(2026, 5, 16), SUNRISE_SUNSET_ELEVATION, Direction.SETTING)


def test_every_polar_site_event_of_the_year_is_a_real_crossing_or_a_real_polar_day() -> None:
    problems: list[str] = []
    for site in (TROMSO, LONGYEARBYEN, MCMURDO):
        for k in range(365):
            day = date(2026, 1, 1) + timedelta(days=k)
            for direction in Direction:
                for elevation in (SUNRISE_SUNSET_ELEVATION, CIVIL_TWILIGHT_ELEVATION):
                    problems += _problems(site, day, elevation, direction)
    assert not problems, "\n".join(problems)
