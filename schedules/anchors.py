"""Anchors of dimming-profile steps: when in a night a step takes effect.

An anchor is written as one of

- `on` (the night's switch-on time), `off` (its switch-off time),
- `midnight` (00:00 local time after the evening of the night),
- `virtual_midnight` (halfway between `on` and `off`, as clockless LED drivers do),
- a clock time `HH:MM` (local time; times from 12:00 to 23:59 belong to the evening,
  00:00 to 11:59 to the morning after),

optionally followed by an offset `+HH:MM` or `-HH:MM`, e.g. `off-00:45`, `22:30+00:15`.
"""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass
from datetime import time, timedelta
from typing import Literal

AnchorBase = Literal["on", "off", "midnight", "virtual_midnight", "clock"]

_ANCHOR = re.compile(
    r"^(?P<base>on|off|midnight|virtual_midnight|(?P<hh>\d{1,2}):(?P<mm>\d{2}))"
    r"(?:(?P<sign>[+-])(?P<oh>\d{1,2}):(?P<om>\d{2}))?$"
)


class AnchorSyntaxError(ValueError):
    """An anchor string that does not follow the anchor syntax."""


@dataclass(frozen=True, slots=True)
class Anchor:
    """A parsed anchor: a base point in the night plus a signed offset."""

    base: AnchorBase
    clock: time | None = None
    offset: timedelta = timedelta(0)

    def __str__(self) -> str:
        text = self.clock.strftime("%H:%M") if self.clock is not None else self.base
        if self.offset:
            sign = "-" if self.offset < timedelta(0) else "+"
            minutes = abs(int(self.offset.total_seconds())) // 60
            text += f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
        return text


def parse_anchor(text: str) -> Anchor:
    """Parse an anchor such as `on`, `22:30`, `off-00:45`; AnchorSyntaxError says why not."""
    match = _ANCHOR.match(text.strip())
    if match is None:
        raise AnchorSyntaxError(
            f"{text!r} is not an anchor; write on, off, midnight, virtual_midnight or a time "
            "HH:MM, optionally with an offset such as off-00:45 or 22:30+00:15"
        )
    offset = timedelta(0)
    if match["sign"]:
        offset_minutes = int(match["oh"]) * 60 + int(match["om"])
        if int(match["om"]) > 59 or offset_minutes > 12 * 60:
            raise AnchorSyntaxError(
                f"{text!r}: the offset must be at most 12:00 with minutes 00-59"
            )
        offset = timedelta(minutes=offset_minutes if match["sign"] == "+" else -offset_minutes)
    if match["hh"] is not None:
        hours, minutes = int(match["hh"]), int(match["mm"])
        if hours > 23 or minutes > 59:
            raise AnchorSyntaxError(f"{text!r}: a clock time runs from 00:00 to 23:59")
        return Anchor("clock", time(hours, minutes), offset)
    base = typing.cast(AnchorBase, match["base"])
    return Anchor(base, None, offset)
