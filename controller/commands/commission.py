"""`streetlight commission`: the hardware self-test a technician runs after installing a unit.

It builds every driver the config names (without the daemon), says what and where each one is,
then tests it where the technician can see it: each zone's lamps switch and dim, each meter is
read, each motion sensor waits for someone to walk past, each photocell is read. Every check
ends PASS or FAIL with what to do; the exit code is 0 only when all pass.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from controller.assemble import initial_levels
from controller.cli import EXIT_CONFIG, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from controller.clock import Clock, SystemClock
from controller.commands import settings_for
from controller.config_load import locate_config
from controller.hardware import Hardware, HardwareError, build_hardware
from controller.settings import Settings, device_profile_dirs
from drivers.base import Identity, SelfTestResult


def commission(
    config: str | None,
    *,
    hold_s: float = 3.0,
    wait_s: float = 30.0,
    clock: Clock | None = None,
    pin_factory: object | None = None,
    out: TextIO | None = None,
) -> int:
    """Self-test every driver of the unit; 0 when all pass, 1 when one fails, 2 on bad config.

    Each visible state of an output is held `hold_s` seconds; each motion sensor and photocell
    gets `wait_s` seconds for the technician to trigger it.
    """
    out = out or sys.stdout
    settings = settings_for(config, "the hardware cannot be tested")
    if settings is None:
        return EXIT_CONFIG
    clock = clock or SystemClock()
    levels = initial_levels(settings, clock)
    try:
        hardware = build_hardware(
            settings,
            clock,
            initial_levels=levels,
            pin_factory=pin_factory,
            profile_dirs=device_profile_dirs(locate_config(config)),
        )
    except HardwareError as exc:
        print(f"The hardware cannot be set up: {exc}", file=out)
        return EXIT_CONFIG
    try:
        results = asyncio.run(
            _test_all(settings, hardware, levels, hold_s=hold_s, wait_s=wait_s, out=out)
        )
    except KeyboardInterrupt:
        print("\nInterrupted: the test stopped; restart the unit to put every zone back.", file=out)
        return EXIT_INTERRUPTED
    failed = [r for r in results if not r.ok]
    print(f"\nResult: {len(results) - len(failed)} passed, {len(failed)} failed.", file=out)
    if failed:
        print("Fix what each FAIL says, then run `streetlight commission` again.", file=out)
        return EXIT_FAILED
    print("Every output, meter and sensor answered. The unit is ready.", file=out)
    return EXIT_OK


async def _test_all(
    settings: Settings,
    hardware: Hardware,
    levels: dict[str, int],
    *,
    hold_s: float,
    wait_s: float,
    out: TextIO,
) -> list[SelfTestResult]:
    unit = settings.unit
    print(
        f"streetlight commission: unit {unit.id} ({unit.site}), {len(settings.zones)} zone(s), "
        f"{len(settings.meters)} meter(s)",
        file=out,
    )
    results: list[SelfTestResult] = []
    tested_lights: list[object] = []
    try:
        for zone in settings.zones:
            print(f"\nzone {zone.id} ({zone.label})", file=out)
            group = hardware.outputs[zone.id]
            _identity("lamps", group.identify(), out)
            # start from the level the schedule wants now: each self-test puts it back after,
            # so the street is left as the daemon would have it
            await group.set_level(levels[zone.id])
            what = "switch on and off" if group.switched else "switch and dim"
            print(f"    watch the lamps: they {what}, {hold_s:g} s each step", file=out)
            results.append(_show(await group.self_test(hold_s=hold_s), out))
            for sensor in hardware.motion_inputs.get(zone.id, []):
                _identity("motion", sensor.identify(), out)
                print(f"    walk in front of the sensor within {wait_s:g} s", file=out, flush=True)
                results.append(_show(await sensor.self_test(timeout_s=wait_s), out))
            light = hardware.light_inputs.get(zone.id)
            if light is not None and light not in tested_lights:  # a shared cell once
                tested_lights.append(light)
                _identity("light", light.identify(), out)
                print(
                    f"    cover the cell (by day) or shine a torch on it (at night) within "
                    f"{wait_s:g} s to see it change",
                    file=out,
                )
                results.append(_show(await light.self_test(timeout_s=wait_s), out))
        for name, meter in hardware.meters.items():
            print(f"\nmeter {name}", file=out)
            _identity("meter", meter.identify(), out)
            results.append(_show(await meter.self_test(), out))
    finally:
        # the lamps stay at the level the schedule wants until the daemon takes over
        await hardware.close(keep_outputs=True)
    return results


def _identity(role: str, identity: Identity, out: TextIO) -> None:
    print(f"  {role:<6} {identity.model} [{identity.kind}] at {identity.where}", file=out)


def _show(result: SelfTestResult, out: TextIO) -> SelfTestResult:
    for step in result.steps:
        print(f"      {step}", file=out)
    verdict = "PASS" if result.ok else f"FAIL  {result.problem}"
    print(f"    {verdict}", file=out, flush=True)
    return result
