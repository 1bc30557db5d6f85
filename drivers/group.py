"""A zone's outputs driven as one: switches and dimmers in the order that keeps lamps safe.

A zone may have a relay that switches the luminaires' mains and a dimmer that sets their light
(0-10 V or a Modbus analogue output). Order matters: switching on, the dimmer is set first so
the lamps do not flash at full light before dimming; switching off, the relay opens first so
"0 %" really means off, never a driver's minimum glow.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from drivers.base import Identity, Output, SelfTestResult, check_level


class OutputGroup:
    """Several outputs of one zone behaving as one `Output`.

    The group is switched (`switched` True) only when every member is. Its `fault` names every
    faulty member; a member's fault never keeps the others from being driven.
    """

    def __init__(self, name: str, outputs: Sequence[Output]) -> None:
        if not outputs:
            raise ValueError(f"zone output group {name!r} needs at least one output")
        self.name = name
        self.outputs = tuple(outputs)
        self.switched = all(o.switched for o in self.outputs)
        periods = [p for o in self.outputs if (p := getattr(o, "reassert_s", None)) is not None]
        # the group's level is written again as often as its most forgetful member needs
        self.reassert_s: float | None = min(periods) if periods else None
        self._level = 0
        self._errors: dict[str, str] = {}  # members whose set_level raised, by name

    async def set_level(self, level: int) -> None:
        """Drive every member to `level`: dimmers before switches going up, after going down."""
        check_level(level)
        switches = [o for o in self.outputs if o.switched]
        dimmers = [o for o in self.outputs if not o.switched]
        first, then = (switches, dimmers) if level == 0 else (dimmers, switches)
        for batch in (first, then):
            # members of one kind do not depend on each other: drive them together, so a
            # slow bus device does not delay a GPIO relay; and a member that breaks its
            # promise not to raise must not keep the others from being driven
            results = await asyncio.gather(
                *(o.set_level(level) for o in batch), return_exceptions=True
            )
            for output, result in zip(batch, results, strict=True):
                if isinstance(result, Exception):
                    self._errors[output.name] = f"driver error {result!r}: report this bug"
                else:
                    self._errors.pop(output.name, None)
        self._level = level

    @property
    def level(self) -> int:
        """The level last asked for."""
        return self._level

    @property
    def fault(self) -> str | None:
        """None while every member works, else each faulty member with what is wrong."""
        faults = [
            f"{o.name}: {fault}"
            for o in self.outputs
            if (fault := o.fault or self._errors.get(o.name)) is not None
        ]
        return "; ".join(faults) or None

    def identify(self) -> Identity:
        """The members' kinds and places, joined."""
        members = [o.identify() for o in self.outputs]
        return Identity(
            kind="+".join(m.kind for m in members),
            model=" + ".join(m.model for m in members),
            where="; ".join(m.where for m in members),
        )

    async def self_test(self, *, hold_s: float = 3.0) -> SelfTestResult:
        """Each member's self-test, one after the other, so a technician sees which is which."""
        steps: list[str] = []
        problems: list[str] = []
        for output in self.outputs:
            result = await output.self_test(hold_s=hold_s)
            steps += [f"{output.name}: {step}" for step in result.steps]
            if not result.ok:
                problems.append(f"{output.name}: {result.problem}")
        return SelfTestResult(self.name, not problems, tuple(steps), "; ".join(problems) or None)

    async def close(self) -> None:
        """Close every member; safe to call more than once."""
        for output in self.outputs:
            await output.close()

    def __repr__(self) -> str:
        return f"OutputGroup({self.name!r}, level={self._level}, outputs={list(self.outputs)})"
