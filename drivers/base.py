"""The small interfaces every hardware backend implements.

The controller sees only these, never whether a zone is a relay on a GPIO pin, a dimmer module
on an RS-485 bus, or a simulation.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Output(Protocol):
    """Something that lights a zone: a dimmable or a switched output.

    Must: `set_level(level)` takes an integer 0-100 and, for a switched output, treats any
    level above 0 as on; `level` is the last level applied; `fault` is None while the output
    works and a sentence for people when it does not; `close()` is idempotent.
    May: refuse a level with `ValueError` when it is outside 0-100.
    """

    name: str

    async def set_level(self, level: int) -> None:
        """Drive the luminaires to `level` percent."""
        ...

    @property
    def level(self) -> int:
        """The level last applied."""
        ...

    @property
    def fault(self) -> str | None:
        """None while the output works, else what is wrong."""
        ...

    async def close(self) -> None:
        """Release the hardware; safe to call more than once."""
        ...


def check_level(level: int) -> int:
    """`level` when it is an integer 0-100; ValueError saying so otherwise."""
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 100:
        raise ValueError(f"a level is an integer from 0 to 100, got {level!r}")
    return level
