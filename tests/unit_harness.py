"""Running a whole unit (sim.toml) against a real broker, on a clock the test moves.

`UnitRun` starts `Unit.run()` as a task and stops it cleanly; `Operator` (tests/mqtt_client.py)
is the city operator on the other side of the broker.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from controller.clock import ManualClock, settle
from controller.clock_trust import FixedSync, SyncSource
from controller.config_load import load_settings
from controller.energy_service import FreeSpace
from controller.settings import Settings
from controller.unit import Unit
from tests.conftest import Broker, eventually

SIM = Path(__file__).resolve().parents[1] / "deploy" / "examples" / "sim.toml"


def sim_settings(
    broker: Broker | None,
    data_dir: Path,
    *,
    quiet: bool = True,
    mqtt: dict[str, Any] | None = None,
    **overrides: Any,
) -> Settings:
    """sim.toml on `broker` with its data in `data_dir`; `quiet` removes the motion sensors and
    photocells so levels follow the schedule and the commands alone."""
    section: dict[str, Any] = {
        "enabled": broker is not None,
        "reconnect_min_s": 0.1,
        "reconnect_max_s": 1.0,
    }
    if broker is not None:
        section |= {"host": broker.host, "port": broker.port}
    section |= mqtt or {}
    settings = load_settings(SIM, data_dir=data_dir, mqtt=section, **overrides)
    if quiet:
        calm: dict[str, object] = {"motion_inputs": [], "light_input": None}
        zones = [zone.model_copy(update=calm) for zone in settings.zones]
        settings = settings.model_copy(update={"zones": zones})
    return settings


@asynccontextmanager
async def running_unit(
    settings: Settings,
    clock: ManualClock,
    *,
    sync: SyncSource | None = None,
    monotonic: Callable[[], float] | None = None,
    config_file: Path | None = None,
    wait_subscribed: bool = True,
    free_space: FreeSpace | None = None,
) -> AsyncIterator[Unit]:
    """A unit running as a task until the block ends, then stopped cleanly (and awaited)."""
    kwargs: dict[str, Any] = {}
    if monotonic is not None:
        kwargs["monotonic"] = monotonic
    if free_space is not None:
        kwargs["free_space"] = free_space
    unit = Unit(
        settings,
        clock,
        sync=sync if sync is not None else FixedSync(True),
        config_file=config_file,
        **kwargs,
    )
    task = asyncio.create_task(unit.run())
    await asyncio.wait_for(_ready(unit, task), 5.0)
    if settings.mqtt.enabled and wait_subscribed:  # commands sent from now on are heard
        await eventually(lambda: unit.link is not None and unit.link.subscribed, "subscribed")
    try:
        yield unit
    finally:
        unit.stop()
        await asyncio.wait_for(task, 10.0)


async def _ready(unit: Unit, task: asyncio.Task[None]) -> None:
    waiting = asyncio.ensure_future(unit.wait_ready())
    await asyncio.wait({waiting, task}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiting.cancel()
        task.result()  # raises what the unit raised
    await settle()
