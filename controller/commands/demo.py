"""`streetlight demo`: the unit of deploy/examples/sim.toml through a few nights, fast-forwarded.

It needs no hardware and no broker: the luminaires are simulated, and time runs `speed` times
faster than real time through the real unit (control loop, overrides, meters, MQTT). With a
broker, everything the unit does can be watched, and commanded, over MQTT meanwhile.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import tempfile
from datetime import datetime, time, timedelta, tzinfo
from importlib import resources
from pathlib import Path
from typing import TextIO

from controller.cli import EXIT_OK
from controller.clock import ScaledClock, SystemClock
from controller.clock_trust import FixedSync
from controller.config_load import load_settings
from controller.hardware import Hardware
from controller.logs import setup_logging
from controller.settings import Settings
from controller.unit import Unit
from drivers.sim import SimMeter, SimOutput

_DEMO_START = time(15, 0)  # local time the simulation starts, before sunset
_DEMO_END = time(9, 0)  # local time it ends on the last morning, after sunrise
_CLOSE_GRACE = timedelta(seconds=5)
_BAR = 30


def sim_config_path() -> Path:
    """The example config with simulated hardware: packaged in a wheel, or in the source tree."""
    packaged = resources.files("controller") / "examples" / "sim.toml"
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "deploy" / "examples" / "sim.toml"


def demo(
    nights: int = 1,
    speed: float = 3600.0,
    start: datetime | None = None,
    out: TextIO | None = None,
    broker: tuple[str, int] | None = None,
) -> int:
    """Simulate `nights` nights from today's afternoon and print what each zone did; with
    `broker` (host, port), the unit publishes and takes commands there meanwhile."""
    out = out or sys.stdout
    data_dir = Path(tempfile.mkdtemp(prefix="streetlight-demo-"))
    mqtt: dict[str, object] = {"enabled": False}
    if broker is not None:
        mqtt = {"enabled": True, "host": broker[0], "port": broker[1]}
    # simulated time is trusted time: no NTP to wait for
    settings = load_settings(
        sim_config_path(), data_dir=data_dir, mqtt=mqtt, clock={"require_sync": False}
    )
    tz = settings.unit.tz
    if start is None:
        today = SystemClock().now().astimezone(tz).date()
        start = datetime.combine(today, _DEMO_START, tzinfo=tz)
    end = datetime.combine(start.date() + timedelta(days=nights), _DEMO_END, tzinfo=tz)
    hours = (end - start).total_seconds() / 3600
    print(
        f"streetlight demo: unit {settings.unit.id} at {settings.unit.site}, {len(settings.zones)} "
        f"simulated zones, {nights} night(s) from {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} "
        f"({tz}); {hours:.0f} h at {speed:g}x take about {hours * 3600 / speed:.0f} s.",
        file=out,
        flush=True,
    )
    setup_logging(settings.logging.level, settings.logging.format, stream=out)
    clock = ScaledClock(start, speed=speed)
    unit = Unit(settings, clock, sync=FixedSync(True))
    # a few seconds past the end, so the last energy interval is closed and stored
    asyncio.run(_run_until(unit, clock, end + _CLOSE_GRACE, out))
    assert unit.hardware is not None  # built by run()
    _summary(settings, unit.hardware, end, out)
    _report(settings, start, end, out)
    return EXIT_OK


def _report(settings: Settings, start: datetime, end: datetime, out: TextIO) -> None:
    """Write the funders' HTML report of the simulated nights and print where it is."""
    from controller.ledger import Ledger  # noqa: PLC0415 - only the demo's end needs them
    from controller.report import write_html  # noqa: PLC0415

    tz = settings.unit.tz
    path = settings.data_dir / "report.html"
    ledger = Ledger(settings.data_dir, readonly=True)
    try:
        first, last = start.astimezone(tz).date(), end.astimezone(tz).date()
        totals = write_html(settings, ledger, first, last, path=path)
    finally:
        ledger.close()
    saved = totals.baseline_kwh - totals.kwh
    print(
        f"\nEnergy ledger: {totals.records} records, {totals.kwh:.2f} kWh used "
        f"({totals.source}), baseline {totals.baseline_kwh:.2f} kWh, saved {saved:.2f} kWh = "
        f"{saved * totals.tariff_thb_per_kwh:.2f} THB at "
        f"{totals.tariff_thb_per_kwh:g} THB/kWh, {saved * totals.co2_kg_per_kwh:.2f} kg CO2e.",
        file=out,
    )
    print(f"The funders' report: {path}", file=out, flush=True)


async def _run_until(unit: Unit, clock: ScaledClock, end: datetime, out: TextIO) -> None:
    task = asyncio.create_task(unit.run())
    progress = asyncio.create_task(_progress(clock, clock.now(), end, out))
    await clock.sleep_until(end)
    progress.cancel()
    unit.stop()
    await task


async def _progress(clock: ScaledClock, start: datetime, end: datetime, out: TextIO) -> None:
    """A progress bar on a terminal, redrawn twice a second; nothing when `out` is not one."""
    if not out.isatty():
        return
    total = (end - start).total_seconds()
    try:
        while True:
            done = min(max((clock.now() - start).total_seconds() / total, 0.0), 1.0)
            filled = round(done * _BAR)
            local = clock.now().astimezone(end.tzinfo)
            bar = "#" * filled + "." * (_BAR - filled)
            out.write(f"\r  [{bar}] {done * 100:3.0f} %  {local:%Y-%m-%d %H:%M}")
            out.flush()
            await asyncio.sleep(0.5)  # a redraw for the eye: real time, not the unit's
    finally:
        out.write("\n")
        out.flush()


def _lit_periods(output: SimOutput, end: datetime) -> list[tuple[datetime, datetime]]:
    history = [*output.history, (end, -1)]
    return [
        (at, min(next_at, end))
        for (at, level), (next_at, _) in itertools.pairwise(history)
        if level > 0 and next_at > at
    ]


_ROW = "  {:<12} {:<12} {:<12} {:>6} {:>7}"


def _summary(settings: Settings, hardware: Hardware, end: datetime, out: TextIO) -> None:
    """What the simulated lamps did by their own physics: what the ledger should agree with."""
    tz = settings.unit.tz
    print("\nWhat each zone's simulated lamps did (times in the unit's time zone):", file=out)
    print(_ROW.format("zone", "lit from", "lit until", "hours", "kWh"), file=out)
    total_kwh = 0.0
    for zone in settings.zones:
        outputs = hardware.sim_outputs(zone.id)
        periods = [p for o in outputs for p in _lit_periods(o, end)]
        lit_h = sum((b - a).total_seconds() for a, b in periods) / 3600
        kwh = sum(o.energy_kwh() for o in outputs)
        first = min((a for a, _ in periods), default=None)
        last = max((b for _, b in periods), default=None)
        row = (zone.id, _when(first, tz), _when(last, tz), f"{lit_h:.1f}", f"{kwh:.2f}")
        print(_ROW.format(*row), file=out)
        total_kwh += kwh
    print(f"\nThe simulated lamps drew {total_kwh:.2f} kWh.", file=out)
    for name, meter in hardware.meters.items():
        if isinstance(meter, SimMeter):
            zones = ", ".join(settings.meters[name].zones)
            print(
                f"The simulated meter {name!r} ({zones}) counted "
                f"{meter.counter_wh() / 1000:.2f} kWh on its own counter.",
                file=out,
            )


def _when(moment: datetime | None, tz: tzinfo) -> str:
    return "-" if moment is None else f"{moment.astimezone(tz):%m-%d %H:%M}"
