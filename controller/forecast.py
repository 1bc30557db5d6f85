"""A year's scheduled energy, cost and CO2 per zone: now, and with other dimming profiles.

So a city can see what a profile change would save before making it. Pure: no clock, no
files. The command (`controller.commands.forecast`) reads the config and any profile files,
picks the first night and prints the result.

How the numbers are made, for each zone and each night of the period:

- the night's plan is the schedule core's (`schedules.decide.plan_night`): the zone's profile,
  the calendar (festival nights, market nights, maintenance nights off), the sun at the unit's
  place; motion, remote overrides and fail-safe are not in it;
- the plan's straight pieces (holds and fades) give lit hours and level hours
  (`schedules.energy.nights_hours`), and the zone's power model
  (`controller.energy_model.zone_power`, affine in the level while lit) makes them energy
  exactly: `fixed_w * lit_h + per_level_w * level_h`;
- the baseline is the contract's: the zone's baseline power (`baseline_w`, default its rated
  power), no dimming, for as long as the schedule wants the lamps on;
- cost is kWh times `energy.tariff_thb_per_kwh` (an avoided cost at a reference tariff), CO2
  kWh times `energy.co2_kg_per_kwh`.

An alternative changes the profile a zone names (its `profile` key), nothing else: calendar
entries still decide their nights, and the zone keeps its `on_level`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from controller.energy_model import ZonePower, zone_power
from controller.plans import plans_of, profile_of, site_of
from controller.settings import DimmingProfile, Settings
from schedules.decide import ZonePlan
from schedules.energy import nights_hours
from schedules.solar import Site

NIGHTS = 365

# `ZONE=` in front of a spec: a zone id (ids cannot contain '=' or ':')
_ZONE_PREFIX = re.compile(r"^([a-z0-9][a-z0-9_-]{0,63})=(.*)$", re.DOTALL)
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")

NOT_INCLUDED = (
    "motion boosts (a zone raised by passers-by uses more than its schedule)",
    "remote overrides",
    "fail-safe periods (output faults, an unsynchronised clock)",
    "lamp failures and outages",
)


class ForecastError(ValueError):
    """An alternative that cannot be used: what is wrong, and how to fix it."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix


@dataclass(frozen=True, slots=True)
class AlternativeSpec:
    """One `--alternative`: profile `profile` (from `file` when given) for `zone`, or for all."""

    text: str
    zone: str | None
    profile: str
    file: str | None = None

    @property
    def label(self) -> str:
        """How the profile is named in the output: `NAME` or `FILE:NAME`."""
        return f"{self.file}:{self.profile}" if self.file else self.profile


def parse_spec(text: str) -> AlternativeSpec:
    """`NAME`, `ZONE=NAME`, `FILE.toml:NAME` or `ZONE=FILE.toml:NAME`, as an AlternativeSpec."""
    spec = text.strip()
    zone: str | None = None
    if match := _ZONE_PREFIX.match(spec):
        zone, spec = match.group(1), match.group(2)
    file: str | None = None
    if ":" in spec:
        file, _, spec = spec.rpartition(":")
        if not file:
            raise ForecastError(
                f"--alternative {text!r} names no file before ':'",
                "write FILE.toml:NAME, or NAME for a profile of the config",
            )
    if not _ID.match(spec):
        raise ForecastError(
            f"--alternative {text!r}: {spec!r} is not a profile name",
            "write NAME (a [profiles.NAME] table of the config), ZONE=NAME for one zone, "
            "or FILE.toml:NAME for a profile in another file",
        )
    return AlternativeSpec(text, zone, spec, file)


def resolve_alternative(
    settings: Settings,
    specs: Sequence[AlternativeSpec],
    file_profiles: Mapping[tuple[str, str], DimmingProfile] | None = None,
) -> dict[str, tuple[str, DimmingProfile]]:
    """Each zone's alternative profile `(label, profile)`, by zone id.

    The specs apply in order, so a later one wins: `--alternative dim --alternative
    market=market` gives every zone `dim` except `market`. Zones no spec names keep their
    current profile. `file_profiles` holds the profiles read from files, by (file, name).
    """
    zone_ids = [zone.id for zone in settings.zones]
    chosen = {zone.id: (zone.profile, settings.profiles[zone.profile]) for zone in settings.zones}
    for spec in specs:
        if spec.zone is not None and spec.zone not in chosen:
            raise ForecastError(
                f"--alternative {spec.text!r}: no zone with id {spec.zone!r} "
                f"(known: {', '.join(zone_ids)})",
                "name a zone by its id, as in the config's [[zones]] tables",
            )
        if spec.file is None:
            profile = settings.profiles.get(spec.profile)
            if profile is None:
                raise ForecastError(
                    f"--alternative {spec.text!r}: no profile named {spec.profile!r} "
                    f"(known: {', '.join(sorted(settings.profiles))})",
                    "name a [profiles.NAME] table of the config, or give a profile from "
                    "another file as FILE.toml:NAME",
                )
        else:
            found = (file_profiles or {}).get((spec.file, spec.profile))
            if found is None:
                raise ForecastError(
                    f"--alternative {spec.text!r}: {spec.file} has no profile "
                    f"named {spec.profile!r}",
                    f"add a [profiles.{spec.profile}] table to {spec.file}",
                )
            profile = found
        for zone_id in [spec.zone] if spec.zone is not None else zone_ids:
            chosen[zone_id] = (spec.label, profile)
    return chosen


@dataclass(frozen=True, slots=True)
class Figures:
    """One zone (or the total) over the period with one set of profiles."""

    kwh: float
    baseline_kwh: float
    burn_h: float

    def __add__(self, other: Figures) -> Figures:
        return Figures(
            self.kwh + other.kwh,
            self.baseline_kwh + other.baseline_kwh,
            self.burn_h + other.burn_h,
        )


ZERO = Figures(0.0, 0.0, 0.0)


@dataclass(frozen=True, slots=True)
class ZoneForecast:
    """One zone: its current profile's figures, and the alternative's when one was asked for."""

    zone_id: str
    name: str
    profile: str
    current: Figures
    alternative_profile: str | None = None
    alternative: Figures | None = None
    motion: bool = False  # the zone is raised by motion, which the forecast leaves out


@dataclass(frozen=True, slots=True)
class Forecast:
    """The period's figures for every zone, and the rates cost and CO2 are computed with."""

    unit: str
    site: str
    timezone: str
    first: date
    nights: int
    tariff_thb_per_kwh: float
    co2_kg_per_kwh: float
    zones: tuple[ZoneForecast, ...]
    alternatives: tuple[str, ...] = ()

    @property
    def last(self) -> date:
        """The period's last night (its evening)."""
        return self.first + timedelta(days=self.nights - 1)

    @property
    def has_alternative(self) -> bool:
        """Whether an alternative was asked for."""
        return any(zone.alternative is not None for zone in self.zones)

    def total_current(self) -> Figures:
        """All zones with their current profiles."""
        return sum((z.current for z in self.zones), ZERO)

    def total_alternative(self) -> Figures | None:
        """All zones with the alternative; None without one."""
        if not self.has_alternative:
            return None
        return sum((z.alternative or z.current for z in self.zones), ZERO)


def zone_year(
    site: Site, plan: ZonePlan, power: ZonePower, baseline_w: float, *, first: date, nights: int
) -> Figures:
    """One zone's scheduled energy, baseline energy and burning hours over `nights` nights."""
    days = (first + timedelta(days=offset) for offset in range(nights))
    hours = nights_hours(site, plan, days)
    wh = power.fixed_w * hours.lit_h + power.per_level_w * hours.level_h
    return Figures(wh / 1000, baseline_w * hours.lit_h / 1000, hours.lit_h)


def forecast(
    settings: Settings,
    first: date,
    *,
    nights: int = NIGHTS,
    alternative: Mapping[str, tuple[str, DimmingProfile]] | None = None,
    alternatives: Sequence[str] = (),
) -> Forecast:
    """Every zone's figures for `nights` nights from the evening of `first`.

    `alternative` (from `resolve_alternative`) gives each zone's other profile; without it,
    only the current profiles. `alternatives` are the specs as typed, shown with the result.
    """
    site = site_of(settings)
    plans = plans_of(settings)
    zones = []
    for zone in settings.zones:
        plan = plans[zone.id]
        power = zone_power(zone)
        current = zone_year(site, plan, power, zone.baseline_power_w, first=first, nights=nights)
        other_label: str | None = None
        other: Figures | None = None
        if alternative is not None:
            other_label, profile = alternative[zone.id]
            if other_label == zone.profile:
                other = current  # the same profile: the same nights
            else:
                other_plan = replace(plan, profile=profile_of(other_label, profile))
                other = zone_year(
                    site, other_plan, power, zone.baseline_power_w, first=first, nights=nights
                )
        zones.append(
            ZoneForecast(
                zone.id,
                zone.label,
                zone.profile,
                current,
                other_label,
                other,
                motion=plan.motion is not None,
            )
        )
    return Forecast(
        unit=settings.unit.id,
        site=settings.unit.site,
        timezone=str(settings.unit.tz),
        first=first,
        nights=nights,
        tariff_thb_per_kwh=settings.energy.tariff_thb_per_kwh,
        co2_kg_per_kwh=settings.energy.co2_kg_per_kwh,
        zones=tuple(zones),
        alternatives=tuple(alternatives),
    )


def _figures_json(figures: Figures, forecast: Forecast) -> dict[str, float]:
    kwh = round(figures.kwh, 3)
    return {
        "kwh": kwh,
        "baseline_kwh": round(figures.baseline_kwh, 3),
        "thb": round(kwh * forecast.tariff_thb_per_kwh, 2),
        "kg_co2e": round(kwh * forecast.co2_kg_per_kwh, 2),
        "burn_h": round(figures.burn_h, 2),
    }


_AMOUNTS = ("kwh", "baseline_kwh", "thb", "kg_co2e", "burn_h")
_DIGITS = {"kwh": 3, "baseline_kwh": 3, "thb": 2, "kg_co2e": 2, "burn_h": 2}


def _with_saving(amounts: dict[str, Any]) -> dict[str, Any]:
    """The amounts and the share of the baseline they save, in percent (None without one)."""
    baseline = amounts["baseline_kwh"]
    saved = round((1 - amounts["kwh"] / baseline) * 100, 1) if baseline > 0 else None
    return amounts | {"saved_vs_baseline_pct": saved}


def _sum(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {key: round(sum(row[key] for row in rows), _DIGITS[key]) for key in _AMOUNTS}


def _difference(current: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    return {key: round(other[key] - current[key], _DIGITS[key]) for key in _AMOUNTS}


def forecast_json(forecast: Forecast) -> dict[str, Any]:
    """The forecast as one JSON object. Amounts are rounded per zone (kWh to 3 decimals, THB,
    kg CO2e and hours to 2) and every total is the sum of the zones' rounded figures, so the
    numbers add up in a spreadsheet. `difference` is alternative minus current: negative
    means the alternative uses (and costs, and emits) less."""
    zones: dict[str, Any] = {}
    currents: list[dict[str, Any]] = []
    others: list[dict[str, Any]] = []
    for zone in forecast.zones:
        current = _figures_json(zone.current, forecast)
        currents.append(current)
        entry: dict[str, Any] = {
            "name": zone.name,
            "motion": zone.motion,
            "current": {"profile": zone.profile} | _with_saving(current),
            "alternative": None,
            "difference": None,
        }
        if forecast.has_alternative:
            other = _figures_json(zone.alternative or zone.current, forecast)
            others.append(other)
            entry["alternative"] = {"profile": zone.alternative_profile} | _with_saving(other)
            entry["difference"] = _difference(current, other)
        zones[zone.zone_id] = entry
    total_current = _sum(currents)
    total: dict[str, Any] = {
        "current": _with_saving(total_current),
        "alternative": None,
        "difference": None,
    }
    if forecast.has_alternative:
        total_other = _sum(others)
        total["alternative"] = _with_saving(total_other)
        total["difference"] = _difference(total_current, total_other)
    return {
        "unit": forecast.unit,
        "site": forecast.site,
        "timezone": forecast.timezone,
        "from": forecast.first.isoformat(),
        "to": forecast.last.isoformat(),
        "nights": forecast.nights,
        "tariff_thb_per_kwh": forecast.tariff_thb_per_kwh,
        "co2_kg_per_kwh": forecast.co2_kg_per_kwh,
        "alternatives": list(forecast.alternatives),
        "included": "the profiles' switching and dimming and the calendar, with the "
        "luminaires' modelled power",
        "not_included": list(NOT_INCLUDED),
        "zones": zones,
        "total": total,
    }
