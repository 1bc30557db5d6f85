"""The errors drivers raise on purpose; each says what is wrong and how to fix it, for people.

`drivers` imports nothing from the controller, so its errors have their own root; the
controller catches `DriverError` at its supervision boundaries.
"""

from __future__ import annotations


class DriverError(Exception):
    """Root of every error a driver raises on purpose."""


class DeviceFault(DriverError, OSError):
    """The hardware did not do what was asked (no answer, a bad answer, a missing adapter)."""


class ImplausibleReading(DriverError, ValueError):
    """A meter answered, but with values that cannot be true; they are not passed on."""


class HardwareConfigError(DriverError, ValueError):
    """A driver was given settings that cannot work (a pin in use, an unknown device profile)."""
