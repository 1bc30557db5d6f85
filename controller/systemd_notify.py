"""Telling systemd how the daemon is doing: the sd_notify protocol, by hand.

With `Type=notify` systemd passes a datagram socket in `$NOTIFY_SOCKET` and waits for
`READY=1` before it counts the service as started; with `WatchdogSec=` it restarts the service
when `WATCHDOG=1` stops arriving. Each message is one datagram of `KEY=value` lines.

Outside systemd (a test, a laptop) `$NOTIFY_SOCKET` is unset and every call does nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

from controller.logs import log_event

log = logging.getLogger(__name__)

# A send blocks only when systemd's receive queue is full; waiting longer than this would
# stall the event loop that also drives the lights.
_SEND_TIMEOUT_S = 1.0


class Notifier:
    """Sends sd_notify messages to `address` (a socket path, or '@name' for the abstract
    namespace); with `address` None every method is a no-op.

    A failed send is logged (once until a send succeeds again) and never raised: the daemon
    must keep the lights running even when systemd's socket has gone away.
    """

    def __init__(self, address: str | None, *, watchdog_usec: int | None = None) -> None:
        self._address = address
        self._watchdog_usec = watchdog_usec
        self._failing = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Notifier:
        """A notifier for the socket and watchdog systemd gave this process in `environ`.

        The watchdog counts only when WATCHDOG_PID is absent or names this process: a child
        that inherited the environment must not ping for its parent.
        """
        address = environ.get("NOTIFY_SOCKET") or None
        if address is not None and not address.startswith(("/", "@")):
            log_event(
                log,
                "systemd_notify_unsupported",
                level=logging.WARNING,
                socket=address,
                fix="only socket paths and '@' abstract names are supported; run under "
                "systemd's own NOTIFY_SOCKET or unset it",
            )
            address = None
        return cls(address, watchdog_usec=_watchdog_usec(environ))

    @property
    def enabled(self) -> bool:
        """True when messages go to systemd; False when every method is a no-op."""
        return self._address is not None

    def ready(self) -> None:
        """Tell systemd the daemon has started (and, after a reload, that it has finished)."""
        self._send("READY=1")

    def reloading(self) -> None:
        """Tell systemd the daemon is reloading its config; send `ready()` when done."""
        # Type=notify-reload matches the timestamp against the reload it asked for
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self._send(f"RELOADING=1\nMONOTONIC_USEC={usec}")

    def stopping(self) -> None:
        """Tell systemd the daemon is shutting down."""
        self._send("STOPPING=1")

    def status(self, text: str) -> None:
        """Show `text` as the service's status line in `systemctl status`."""
        # a newline would end the STATUS= line and start a bogus assignment
        self._send("STATUS=" + " ".join(text.splitlines()))

    def watchdog(self) -> None:
        """Tell systemd the daemon is alive; send at least every `watchdog_interval()` s."""
        self._send("WATCHDOG=1")

    def watchdog_interval(self) -> float | None:
        """How often to call `watchdog()`, in seconds (half of systemd's limit), or None when
        systemd watches no watchdog for this process."""
        if self._watchdog_usec is None:
            return None
        return self._watchdog_usec / 2_000_000

    def _send(self, message: str) -> None:
        if self._address is None:
            return
        target = "\0" + self._address[1:] if self._address.startswith("@") else self._address
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.settimeout(_SEND_TIMEOUT_S)
                sock.sendto(message.encode(), target)
        except OSError as exc:
            if not self._failing:
                log_event(
                    log,
                    "systemd_notify_failed",
                    level=logging.WARNING,
                    socket=self._address,
                    message=message.split("\n", 1)[0],
                    error=str(exc),
                    fix="systemd did not take the message (its socket is gone or full); the "
                    "daemon keeps running: if systemd restarts it, see `journalctl -u streetlight`",
                )
            self._failing = True
            return
        self._failing = False

    def __repr__(self) -> str:
        return f"Notifier(address={self._address!r}, watchdog_usec={self._watchdog_usec})"


def _watchdog_usec(environ: Mapping[str, str]) -> int | None:
    text = environ.get("WATCHDOG_USEC")
    if not text:
        return None
    pid = environ.get("WATCHDOG_PID")
    if pid and pid.strip() != str(os.getpid()):
        return None
    try:
        usec = int(text)
    except ValueError:
        usec = 0
    if usec <= 0:
        log_event(
            log,
            "systemd_watchdog_ignored",
            level=logging.WARNING,
            watchdog_usec=text,
            fix="WATCHDOG_USEC must be a whole number of microseconds above 0; set it with "
            "WatchdogSec= in the unit file",
        )
        return None
    return usec
