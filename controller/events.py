"""What the daemon tells the world: zone states and events, as plain data.

The daemon produces them; the MQTT interface (and later the energy ledger) consumes them. Nothing
here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from schedules.decide import Source

EventKind = Literal[
    "lamp_failure",
    "day_burner",
    "cycling",
    "meter_offline",
    "driver_fault",
    "clock_unsynced",
    "recovered",
    "config_reloaded",
    "energy_summarised",
]


@dataclass(frozen=True, slots=True)
class ZoneState:
    """What a zone is doing now, why, and since when.

    `command_id` is the id of the command this state confirms (None when it does not come
    from a command); `override_until` is when the zone's override ends, None without one.
    """

    level: int
    source: Source
    since: datetime
    command_id: str | None = None
    override_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """Something that needs attention, or has recovered (the contract's Event)."""

    kind: EventKind
    zone: str | None
    detail: str
    ts: datetime
