"""`streetlight check`: is this config usable, and if not, everything that is wrong with it."""

from __future__ import annotations

import sys
from typing import TextIO

from controller.cli import EXIT_CONFIG, EXIT_OK
from controller.clock import SystemClock
from controller.config_load import config_warnings, load_settings, locate_config
from controller.errors import ConfigError


def check(config: str | None, out: TextIO | None = None) -> int:
    """Print a verdict on the config; exit code 0 when valid, 2 listing every problem."""
    out = out or sys.stdout
    path = locate_config(config)
    try:
        settings = load_settings(path)
    except ConfigError as exc:
        count = len(exc.problems)
        print(
            f"{path}: {count} problem{'s' if count != 1 else ''}; the unit will not start until "
            "they are fixed:",
            file=out,
        )
        for number, problem in enumerate(exc.problems, 1):
            print(f"  {number}. {problem}", file=out)
        return EXIT_CONFIG
    zones = ", ".join(zone.id for zone in settings.zones)
    print(
        f"{path}: valid. Unit {settings.unit.id} at {settings.unit.site} "
        f"({settings.unit.latitude}, {settings.unit.longitude}, {settings.unit.timezone}); "
        f"{len(settings.zones)} zone(s): {zones}; {len(settings.profiles)} profile(s); "
        f"{len(settings.meters)} meter(s); MQTT {'on' if settings.mqtt.enabled else 'off'}.",
        file=out,
    )
    today = SystemClock().now().astimezone(settings.unit.tz).date()
    for warning in config_warnings(settings, today):
        print(f"  warning: {warning}", file=out)
    return EXIT_OK
