"""`streetlight run`: the daemon, as systemd starts it."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Sequence
from pathlib import Path

from controller.assemble import build
from controller.cli import EXIT_CONFIG, EXIT_INTERRUPTED, EXIT_OK
from controller.clock import Clock, SystemClock
from controller.commands import settings_for
from controller.config_load import locate_config
from controller.hardware import HardwareError
from controller.logs import log_event, setup_logging
from controller.settings import Settings, device_profile_dirs

log = logging.getLogger("controller.run")


def run(config: str | None) -> int:
    """Load the config and run the unit until SIGTERM or SIGINT; return the exit code."""
    settings = settings_for(config, "the unit cannot start")
    if settings is None:
        return EXIT_CONFIG
    setup_logging(settings.logging.level, settings.logging.format)
    try:
        asyncio.run(serve(settings, SystemClock(), device_profile_dirs(locate_config(config))))
    except HardwareError as exc:
        log_event(log, "hardware_unusable", level=logging.ERROR, detail=str(exc))
        return EXIT_CONFIG
    except KeyboardInterrupt:  # Ctrl-C before the signal handlers were in place
        log_event(log, "stopped_during_start", signal="SIGINT")
        return EXIT_INTERRUPTED
    return EXIT_OK


async def serve(settings: Settings, clock: Clock, profile_dirs: Sequence[Path] = ()) -> None:
    """Run the unit on `clock` until SIGTERM or SIGINT asks it to stop."""
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log_event(
            log,
            "data_dir_unwritable",
            level=logging.ERROR,
            data_dir=settings.data_dir,
            error=str(exc),
            fix="create it and give the streetlight user write access",
        )
    daemon = build(settings, clock, profile_dirs=profile_dirs)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _stopper(daemon.stop, signum))
    try:
        await daemon.run()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


def _stopper(stop: Callable[[], None], signum: int) -> Callable[[], None]:
    def on_signal() -> None:
        log_event(log, "stop_requested", signal=signal.Signals(signum).name)
        stop()

    return on_signal
