"""`streetlight run`: the daemon, as systemd starts it."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Sequence
from pathlib import Path

from controller.cli import EXIT_CONFIG, EXIT_INTERRUPTED, EXIT_OK
from controller.clock import Clock, SystemClock
from controller.clock_trust import SyncSource
from controller.commands import settings_for
from controller.config_load import locate_config
from controller.hardware import HardwareError
from controller.logs import log_event, setup_logging
from controller.settings import Settings, device_profile_dirs
from controller.systemd_notify import Notifier
from controller.unit import Unit

log = logging.getLogger("controller.run")


def run(config: str | None) -> int:
    """Load the config and run the unit until SIGTERM or SIGINT; return the exit code."""
    settings = settings_for(config, "the unit cannot start")
    if settings is None:
        return EXIT_CONFIG
    setup_logging(settings.logging.level, settings.logging.format)
    try:
        config_file = locate_config(config)
        profile_dirs = device_profile_dirs(config_file)
        asyncio.run(serve(settings, SystemClock(), profile_dirs, config_file=config_file))
    except HardwareError as exc:
        log_event(log, "hardware_unusable", level=logging.ERROR, detail=str(exc))
        return EXIT_CONFIG
    except KeyboardInterrupt:  # Ctrl-C before the signal handlers were in place
        log_event(log, "stopped_during_start", signal="SIGINT")
        return EXIT_INTERRUPTED
    return EXIT_OK


async def serve(
    settings: Settings,
    clock: Clock,
    profile_dirs: Sequence[Path] = (),
    *,
    config_file: Path | None = None,
    sync: SyncSource | None = None,
) -> None:
    """Run the unit on `clock` until SIGTERM or SIGINT; SIGHUP reads the config again."""
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
    unit = Unit(
        settings,
        clock,
        sync=sync,
        notifier=Notifier.from_environment(),
        config_file=config_file,
        profile_dirs=profile_dirs,
    )
    loop = asyncio.get_running_loop()
    handlers = {
        signal.SIGTERM: _on_signal("stop_requested", unit.stop, signal.SIGTERM),
        signal.SIGINT: _on_signal("stop_requested", unit.stop, signal.SIGINT),
        signal.SIGHUP: _on_signal("reload_signal", unit.request_reload, signal.SIGHUP),
    }
    for signum, handler in handlers.items():
        loop.add_signal_handler(signum, handler)
    try:
        await unit.run()
    finally:
        for signum in handlers:
            loop.remove_signal_handler(signum)


def _on_signal(event: str, action: Callable[[], None], signum: int) -> Callable[[], None]:
    def on_signal() -> None:
        log_event(log, event, signal=signal.Signals(signum).name)
        action()

    return on_signal
