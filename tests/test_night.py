"""The night of a date: evening of D to morning of D+1, by offsets or elevations, polar rules."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from schedules.night import Night, NightRule, night_date_at, night_of
from schedules.solar import (
    CIVIL_TWILIGHT_ELEVATION,
    SUNRISE_SUNSET_ELEVATION,
    Direction,
    Site,
    crossing,
    sun_elevation,
    sunrise,
    sunset,
)

BANGKOK = ZoneInfo("Asia/Bangkok")
SAKON_NAKHON = Site(17.155, 104.147, BANGKOK)
BERLIN = Site(52.52, 13.40, ZoneInfo("Europe/Berlin"))
NEW_YORK = Site(40.71, -74.01, ZoneInfo("America/New_York"))
SYDNEY = Site(-33.87, 151.21, ZoneInfo("Australia/Sydney"))
OSLO = Site(59.91, 10.75, ZoneInfo("Europe/Oslo"))
EDINBURGH = Site(55.95, -3.19, ZoneInfo("Europe/London"))
TROMSO = Site(69.65, 18.96, ZoneInfo("Europe/Oslo"))
LONGYEARBYEN = Site(78.22, 15.65, ZoneInfo("Arctic/Longyearbyen"))

DEFAULT = NightRule()
CIVIL = NightRule(
    on_elevation_deg=CIVIL_TWILIGHT_ELEVATION, off_elevation_deg=CIVIL_TWILIGHT_ELEVATION
)
NAUTICAL = NightRule(on_elevation_deg=-12.0, off_elevation_deg=-12.0)

POLAR_NIGHT_ON = "polar night: the sun does not rise; lamps on all night"
POLAR_NIGHT_OFF = "polar night: the sun does not rise; lamps off by config"
POLAR_DAY_OFF = "polar day: the sun does not go down far enough; lamps off"
POLAR_DAY_ON = "polar day: lamps on by config"


def _noon(site: Site, day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=site.tz)


def _window(night: Night) -> tuple[datetime, datetime]:
    assert night.on_at is not None, night
    assert night.off_at is not None, night
    return night.on_at, night.off_at


def _elapsed(start: datetime, end: datetime) -> timedelta:
    """Real time between two aware datetimes (Python subtracts same-zone ones by wall clock)."""
    return end.astimezone(UTC) - start.astimezone(UTC)


def _days(first: date, count: int) -> list[date]:
    return [first + timedelta(days=k) for k in range(count)]


# --------------------------------------------------------------------------------------------
# ordinary nights


def test_default_night_is_sunset_of_the_date_to_sunrise_of_the_next() -> None:
    day = date(2026, 11, 21)
    night = night_of(SAKON_NAKHON, day, DEFAULT)
    assert night.date == day
    assert night.sunset == sunset(SAKON_NAKHON, day)
    assert night.sunrise == sunrise(SAKON_NAKHON, day + timedelta(days=1))
    assert (night.on_at, night.off_at) == (night.sunset, night.sunrise)
    on_at, off_at = _window(night)
    assert on_at.date() == day
    assert off_at.date() == day + timedelta(days=1)
    assert on_at.tzinfo is BANGKOK
    assert night.note is None
    assert timedelta(hours=11) < _elapsed(on_at, off_at) < timedelta(hours=13)


def test_offsets_move_the_edges_from_sunset_and_sunrise() -> None:
    day = date(2026, 11, 21)
    plain = night_of(SAKON_NAKHON, day, DEFAULT)
    moved = night_of(SAKON_NAKHON, day, NightRule(on_offset_min=15, off_offset_min=-30))
    on_at, off_at = _window(plain)
    assert moved.on_at == on_at + timedelta(minutes=15)
    assert moved.off_at == off_at - timedelta(minutes=30)
    # the sun events themselves are reported unchanged
    assert (moved.sunset, moved.sunrise) == (plain.sunset, plain.sunrise)
    early = night_of(SAKON_NAKHON, day, NightRule(on_offset_min=-180, off_offset_min=180))
    assert early.on_at == on_at - timedelta(hours=3)
    assert early.off_at == off_at + timedelta(hours=3)
    fractional = night_of(SAKON_NAKHON, day, NightRule(on_offset_min=0.5))
    assert fractional.on_at == on_at + timedelta(seconds=30)


def test_elevation_thresholds_switch_when_the_sun_is_there() -> None:
    day = date(2026, 11, 21)
    civil = night_of(SAKON_NAKHON, day, CIVIL)
    on_at, off_at = _window(civil)
    assert on_at == crossing(SAKON_NAKHON, day, -6.0, Direction.SETTING)
    assert off_at == crossing(SAKON_NAKHON, day + timedelta(days=1), -6.0, Direction.RISING)
    assert sun_elevation(SAKON_NAKHON, on_at) == pytest.approx(-6.0, abs=0.02)
    assert sun_elevation(SAKON_NAKHON, off_at) == pytest.approx(-6.0, abs=0.02)
    plain_on, plain_off = _window(night_of(SAKON_NAKHON, day, DEFAULT))
    assert plain_on < on_at
    assert off_at < plain_off
    # a positive elevation: on while the sun is still up, off after it is up again
    bright = night_of(SAKON_NAKHON, day, NightRule(on_elevation_deg=3.0, off_elevation_deg=3.0))
    bright_on, bright_off = _window(bright)
    assert bright_on < plain_on
    assert plain_off < bright_off
    assert sun_elevation(SAKON_NAKHON, bright_on) == pytest.approx(3.0, abs=0.02)


def test_each_edge_chooses_offset_or_elevation_independently() -> None:
    day = date(2026, 11, 21)
    rule = NightRule(on_elevation_deg=-6.0, off_offset_min=-10)
    on_at, off_at = _window(night_of(SAKON_NAKHON, day, rule))
    assert on_at == crossing(SAKON_NAKHON, day, -6.0, Direction.SETTING)
    rise = sunrise(SAKON_NAKHON, day + timedelta(days=1))
    assert isinstance(rise, datetime)
    assert off_at == rise - timedelta(minutes=10)


def test_consecutive_ordinary_nights_follow_each_other() -> None:
    nights = [night_of(SAKON_NAKHON, day, DEFAULT) for day in _days(date(2026, 1, 1), 365)]
    for night, following in itertools.pairwise(nights):
        on_at, off_at = _window(night)
        next_on, _ = _window(following)
        assert _noon(SAKON_NAKHON, night.date) < on_at < off_at < next_on
        assert off_at < _noon(SAKON_NAKHON, following.date)


@pytest.mark.parametrize(
    ("local", "night"),
    [
        (datetime(2026, 11, 21, 12, 0), date(2026, 11, 21)),
        (datetime(2026, 11, 21, 23, 59), date(2026, 11, 21)),
        (datetime(2026, 11, 22, 0, 0), date(2026, 11, 21)),
        (datetime(2026, 11, 22, 11, 59, 59), date(2026, 11, 21)),
        (datetime(2026, 11, 22, 12, 0), date(2026, 11, 22)),
    ],
)
def test_night_date_at_splits_days_at_local_noon(local: datetime, night: date) -> None:
    moment = local.replace(tzinfo=BANGKOK)
    assert night_date_at(SAKON_NAKHON, moment) == night
    assert night_date_at(SAKON_NAKHON, moment.astimezone(UTC)) == night
    assert night_date_at(SAKON_NAKHON, moment.astimezone(ZoneInfo("America/New_York"))) == night


# --------------------------------------------------------------------------------------------
# daylight saving time


@pytest.mark.parametrize(
    ("site", "day", "evening_offset", "morning_offset"),
    [
        (BERLIN, date(2026, 3, 28), 1, 2),  # clocks go 02:00 -> 03:00 on 29 March
        (BERLIN, date(2026, 10, 24), 2, 1),  # clocks go 03:00 -> 02:00 on 25 October
        (NEW_YORK, date(2026, 3, 7), -5, -4),  # 8 March
        (NEW_YORK, date(2026, 10, 31), -4, -5),  # 1 November
        (SYDNEY, date(2026, 4, 4), 11, 10),  # 5 April
        (SYDNEY, date(2026, 10, 3), 10, 11),  # 4 October
    ],
    ids=["berlin-spring", "berlin-autumn", "ny-spring", "ny-autumn", "syd-autumn", "syd-spring"],
)
def test_night_window_on_a_daylight_saving_night(
    site: Site, day: date, evening_offset: int, morning_offset: int
) -> None:
    on_at, off_at = _window(night_of(site, day, DEFAULT))
    assert on_at.utcoffset() == timedelta(hours=evening_offset)
    assert off_at.utcoffset() == timedelta(hours=morning_offset)
    assert on_at.date() == day
    assert off_at.date() == day + timedelta(days=1)
    # The real length of the night is in line with its neighbours': the clock change moves
    # the morning's wall time, not the sun.
    lengths = []
    for neighbour in (day - timedelta(days=1), day + timedelta(days=1)):
        start, end = _window(night_of(site, neighbour, DEFAULT))
        lengths.append(_elapsed(start, end))
    length = _elapsed(on_at, off_at)
    assert abs(length - (lengths[0] + lengths[1]) / 2) < timedelta(minutes=2)
    # ... while the wall-clock sunrise jumps by about an hour
    before = _window(night_of(site, day - timedelta(days=1), DEFAULT))[1]
    jump = (off_at.hour * 60 + off_at.minute) - (before.hour * 60 + before.minute)
    assert abs(jump - 60 * (morning_offset - evening_offset)) < 10


# --------------------------------------------------------------------------------------------
# polar night and polar day


def test_polar_night_is_on_from_local_noon_to_local_noon() -> None:
    day = date(2026, 12, 21)
    night = night_of(TROMSO, day, DEFAULT)
    assert night.sunset is None
    assert night.sunrise is None
    assert night.on_at == _noon(TROMSO, day)
    assert night.off_at == _noon(TROMSO, day + timedelta(days=1))
    assert night.note == POLAR_NIGHT_ON


@pytest.mark.parametrize(
    ("site", "first"),
    [(TROMSO, date(2026, 11, 20)), (LONGYEARBYEN, date(2026, 10, 20))],
    ids=["tromso", "longyearbyen"],
)
def test_consecutive_polar_nights_join_with_no_gap(site: Site, first: date) -> None:
    nights = [night_of(site, day, DEFAULT) for day in _days(first, 60)]
    polar = [night for night in nights if night.note == POLAR_NIGHT_ON]
    assert len(polar) > 20
    for night, following in itertools.pairwise(nights):
        if following.note == POLAR_NIGHT_ON and night.note == POLAR_NIGHT_ON:
            assert night.off_at == following.on_at == _noon(site, following.date)


def test_the_nights_into_and_out_of_the_polar_night_at_tromso() -> None:
    # 27 November 2026: the last sunset (before noon) and no sunrise the next morning
    last = night_of(TROMSO, date(2026, 11, 27), DEFAULT)
    assert last.on_at == last.sunset
    assert last.sunset is not None
    assert last.sunset.date() == date(2026, 11, 27)
    assert last.sunrise is None
    assert last.off_at == _noon(TROMSO, date(2026, 11, 28))
    assert last.note == POLAR_NIGHT_ON
    # 14 January 2026: no sunset that day, the first sunrise the next morning
    first = night_of(TROMSO, date(2026, 1, 14), DEFAULT)
    assert first.on_at == _noon(TROMSO, date(2026, 1, 14))
    assert first.sunrise is not None
    assert first.off_at == first.sunrise
    assert first.note == POLAR_NIGHT_ON
    after = night_of(TROMSO, date(2026, 1, 15), DEFAULT)
    assert after.note is None
    assert after.on_at == after.sunset


def test_polar_night_off_by_config() -> None:
    night = night_of(TROMSO, date(2026, 12, 21), NightRule(polar_night="off"))
    assert (night.on_at, night.off_at) == (None, None)
    assert night.note == POLAR_NIGHT_OFF


def test_polar_day_is_off_by_default() -> None:
    for site in (TROMSO, LONGYEARBYEN):
        night = night_of(site, date(2026, 6, 21), DEFAULT)
        assert (night.on_at, night.off_at, night.sunset, night.sunrise) == (None,) * 4
        assert night.note == POLAR_DAY_OFF


def test_polar_day_on_by_config_is_noon_to_noon() -> None:
    day = date(2026, 6, 21)
    night = night_of(TROMSO, day, NightRule(polar_day="on"))
    assert night.on_at == _noon(TROMSO, day)
    assert night.off_at == _noon(TROMSO, day + timedelta(days=1))
    assert night.note == POLAR_DAY_ON


def test_polar_night_setting_does_not_touch_polar_day_and_back() -> None:
    assert night_of(TROMSO, date(2026, 6, 21), NightRule(polar_night="off")).note == POLAR_DAY_OFF
    assert night_of(TROMSO, date(2026, 12, 21), NightRule(polar_day="on")).note == POLAR_NIGHT_ON


def test_a_summer_night_too_bright_for_the_threshold_is_a_polar_day() -> None:
    # Oslo at midsummer: the sun goes 6.7 deg down, never to -12
    day = date(2026, 6, 21)
    night = night_of(OSLO, day, NAUTICAL)
    assert (night.on_at, night.off_at) == (None, None)
    assert night.note == POLAR_DAY_OFF
    assert night.sunset is not None  # the sun itself does set
    assert night_of(OSLO, day, DEFAULT).note is None


def test_polar_sites_never_raise_for_any_night_or_rule() -> None:
    rules = (DEFAULT, CIVIL, NAUTICAL, NightRule(polar_day="on", polar_night="off"))
    for site in (TROMSO, LONGYEARBYEN):
        for day in _days(date(2026, 1, 1), 365):
            for rule in rules:
                night = night_of(site, day, rule)
                assert (night.on_at is None) == (night.off_at is None)
                if night.note is not None:
                    assert night.note.startswith(("polar night", "polar day"))


# --------------------------------------------------------------------------------------------
# found bugs


def test_oslo_civil_twilight_night_starts_in_the_evening_of_its_date() -> None:
    day = date(2026, 6, 21)
    on_at, off_at = _window(night_of(OSLO, day, CIVIL))
    assert on_at > _noon(OSLO, day)
    assert _elapsed(on_at, off_at) < timedelta(hours=6)


def test_longyearbyen_nights_at_the_end_of_the_polar_night_are_lit() -> None:
    for day in (date(2026, 2, 14), date(2026, 2, 15)):
        night = night_of(LONGYEARBYEN, day, DEFAULT)
        midnight = datetime.combine(day + timedelta(days=1), time(0), tzinfo=LONGYEARBYEN.tz)
        assert sun_elevation(LONGYEARBYEN, midnight) < -20
        assert night.note != POLAR_DAY_OFF
        on_at, off_at = _window(night)
        assert on_at <= midnight < off_at


def test_nights_never_overlap_and_start_after_the_sun_has_culminated() -> None:
    problems = []
    for site, rule in ((OSLO, CIVIL), (EDINBURGH, NAUTICAL), (TROMSO, DEFAULT)):
        previous: Night | None = None
        for day in _days(date(2026, 1, 1), 365):
            night = night_of(site, day, rule)
            if night.on_at is not None and night.off_at is not None:
                if sun_elevation(site, night.on_at) > max(rule.on_elevation_deg or 0.0, 0.0) + 1:
                    problems.append(f"{site.latitude} {day}: on at {night.on_at}, sun up")
                if (
                    previous is not None
                    and previous.off_at is not None
                    and previous.off_at > night.on_at
                ):
                    problems.append(f"{site.latitude} {day}: overlaps the night before")
            previous = night
    assert not problems, "\n".join(problems[:20])


def test_every_default_night_below_60_degrees_is_sunset_to_sunrise() -> None:
    """The same checks pass for the default rule at an ordinary latitude through a year."""
    for site in (SAKON_NAKHON, BERLIN, EDINBURGH, SYDNEY):
        previous: Night | None = None
        for day in _days(date(2026, 1, 1), 365):
            night = night_of(site, day, DEFAULT)
            on_at, off_at = _window(night)
            assert sun_elevation(site, on_at) == pytest.approx(SUNRISE_SUNSET_ELEVATION, abs=0.05)
            assert _noon(site, day) < on_at < off_at < _noon(site, day + timedelta(days=1))
            if previous is not None:
                assert _window(previous)[1] < on_at
            previous = night
