"""MQTT commands: one payload in, a validated `Command` or a sentence that says why not.

The rules are the ones in docs/mqtt.md, "Commands" and "Refused commands". Everything here is
pure: no I/O, no clock (the rate limiter is handed its monotonic clock), no MQTT. Which zones a
command addresses comes from its topic and is not this module's job.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

MAX_PAYLOAD_BYTES = 1024
MAX_ID_CHARS = 64
LEVEL_MIN, LEVEL_MAX = 0, 100
DURATION_MIN_S, DURATION_MAX_S = 60, 86400
FIELDS = ("id", "level", "on", "mode", "duration")
ACTIONS = ("level", "on", "mode")
RATE_WINDOW_S = 1.0

_EXAMPLE = '{"level": 40}'
_FIELD_LIST = "id, level, on, mode and duration"
# Fields people plausibly try, and where what they meant actually goes.
_HINTS = {
    "zone": "the topic chooses the zones: publish to P/U/zone/Z/set",
    "zones": "the topic chooses the zones: publish to P/U/zone/Z/set",
    "group": "the topic chooses the group: publish to P/group/G/set",
    "unit": "the topic chooses the unit: publish to P/U/set",
    "until": "give duration in seconds instead",
    "end": "give duration in seconds instead",
    "time": "give duration in seconds instead",
    "brightness": "use level",
    "dim": "use level",
    "state": "use on",
    "power": "use on",
}


class CommandRefused(ValueError):
    """A command that is not valid.

    `str(exc)` is one line for the operator, naming what is wrong and how to fix it; it goes into
    the Ack's `error`. `command_id` is the payload's `id` when it could be read and was valid
    (so the Ack can echo it), else None.
    """

    def __init__(self, message: str, command_id: str | None = None) -> None:
        super().__init__(message)
        self.command_id = command_id


@dataclass(frozen=True, slots=True)
class Command:
    """A valid command: exactly one of `level`, `on` or `auto` is set.

    `duration_s` is only ever set with `level` or `on`; None means the unit's default duration.
    Constructing a Command that breaks these rules raises CommandRefused.
    """

    id: str | None
    level: int | None
    on: bool | None
    auto: bool
    duration_s: int | None

    def __post_init__(self) -> None:
        if self.id is not None:
            _check_id(self.id)
        actions = {"level": self.level is not None, "on": self.on is not None, "mode": self.auto}
        _check_one_action([name for name, given in actions.items() if given])
        if self.level is not None:
            _check_level(self.level)
        if self.on is not None:
            _check_on(self.on)
        if self.duration_s is not None:
            _check_duration(self.duration_s)
            if self.auto:
                raise CommandRefused(_DURATION_WITH_MODE)

    def level_for(self, on_level: int) -> int | None:
        """The level this command asks of a zone with this on_level; None for mode auto."""
        if self.level is not None:
            return self.level
        if self.on is not None:
            return on_level if self.on else 0
        return None


def parse_command(payload: bytes) -> Command:
    """The command in this MQTT payload; CommandRefused when it breaks any rule of docs/mqtt.md.

    Never raises anything else, whatever the bytes, and takes time proportional to their size
    (which is capped at MAX_PAYLOAD_BYTES before anything is decoded).
    """
    pairs = _read_object(payload)
    ids = [value for key, value in pairs if key == "id"]
    # a duplicated id is ambiguous, so nothing is echoed; an invalid id is never echoed
    command_id = _check_id(ids[0]) if len(ids) == 1 else None
    try:
        fields = _unique_fields(pairs)
        level = _check_level(fields["level"]) if "level" in fields else None
        on = _check_on(fields["on"]) if "on" in fields else None
        auto = _check_mode(fields["mode"]) if "mode" in fields else False
        duration = _check_duration(fields["duration"]) if "duration" in fields else None
        _check_one_action([name for name in ACTIONS if name in fields])
        if auto and duration is not None:
            raise CommandRefused(_DURATION_WITH_MODE)
        return Command(id=command_id, level=level, on=on, auto=auto, duration_s=duration)
    except CommandRefused as exc:
        raise CommandRefused(str(exc), command_id) from None


class RateLimiter:
    """At most `max_per_s` commands in any sliding 1-second window. Refused commands do not count.

    Call `allow()` once per command received; only the commands it allows are remembered, so a
    flood that is being refused does not keep the unit refusing after it stops.
    """

    def __init__(self, max_per_s: int, monotonic: Callable[[], float]) -> None:
        if max_per_s < 1:
            raise ValueError(
                f"max_per_s must be at least 1, got {max_per_s}: a unit that allows no "
                "commands cannot be operated"
            )
        self._max_per_s = max_per_s
        self._monotonic = monotonic
        self._allowed: deque[float] = deque()  # times of allowed commands, oldest first

    @property
    def max_per_s(self) -> int:
        """The most commands allowed in any 1-second window."""
        return self._max_per_s

    @property
    def refusal(self) -> str:
        """The sentence for the Ack of a command this limiter refused."""
        return (
            f"too many commands: this unit takes at most {self._max_per_s} a second (setting "
            "mqtt.max_commands_per_s); send them more slowly"
        )

    def allow(self) -> bool:
        """True when a command arriving now keeps within the limit (and it is then counted)."""
        now = self._monotonic()
        while self._allowed and now - self._allowed[0] >= RATE_WINDOW_S:
            self._allowed.popleft()
        if len(self._allowed) >= self._max_per_s:
            return False
        self._allowed.append(now)
        return True


# --------------------------------------------------------------------------------------------
# reading the payload


class _Object:
    """A JSON object kept as the pairs it was written with, so duplicate keys can be seen."""

    __slots__ = ("pairs",)

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        self.pairs = pairs


def _refuse_constant(name: str) -> NoReturn:
    raise CommandRefused(
        f"the command contains {name}, which is not a number JSON allows: send finite numbers only"
    )


def _read_object(payload: bytes) -> list[tuple[str, Any]]:
    """The top-level object's (key, value) pairs in order, duplicates kept."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise CommandRefused(
            f"the command is {len(payload)} bytes, more than the {MAX_PAYLOAD_BYTES} allowed: "
            f"send one small JSON object with only the fields {_FIELD_LIST}"
        )
    if not payload.strip():
        raise CommandRefused(f"the command is empty: send a JSON object such as {_EXAMPLE}")
    try:
        # decoded here, not by json: json.loads(bytes) would also accept UTF-16 and UTF-32
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CommandRefused(
            f"the command is not UTF-8 text (byte {exc.start} cannot be decoded): "
            "send JSON encoded as UTF-8"
        ) from None
    if text.startswith("\ufeff"):
        raise CommandRefused(
            "the command starts with a byte order mark: send UTF-8 JSON without one"
        )
    try:
        value = json.loads(text, object_pairs_hook=_Object, parse_constant=_refuse_constant)
    except CommandRefused:
        raise
    except RecursionError:
        raise CommandRefused(
            f"the command is nested too deeply to read: send a flat JSON object such as {_EXAMPLE}"
        ) from None
    except json.JSONDecodeError as exc:
        raise CommandRefused(
            f"the command is not valid JSON ({exc.msg} at character {exc.pos}): send a JSON "
            f"object such as {_EXAMPLE}"
        ) from None
    except ValueError:  # e.g. an integer beyond Python's digit limit
        raise CommandRefused(
            f"the command could not be read as JSON: send a JSON object such as {_EXAMPLE}"
        ) from None
    if not isinstance(value, _Object):
        raise CommandRefused(
            f"the command must be a JSON object such as {_EXAMPLE}, got {_show(value)}"
        )
    return value.pairs


def _unique_fields(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key, value in pairs:
        if key in fields:
            raise CommandRefused(
                f"field {_quote(key)} appears more than once, so its value is ambiguous: "
                "send each field once"
            )
        fields[key] = value
    unknown = [key for key in fields if key not in FIELDS]
    if unknown:
        raise CommandRefused(_unknown_fields(unknown))
    return fields


def _unknown_fields(unknown: list[str]) -> str:
    shown = ", ".join(_quote(key) for key in unknown[:3])
    if len(unknown) > 3:
        shown += f" and {len(unknown) - 3} more"
    noun = "field" if len(unknown) == 1 else "fields"
    message = f"unknown {noun} {shown}: a command has only the fields {_FIELD_LIST}"
    first = unknown[0]
    if first.casefold() in FIELDS:
        message += f' (names are lower case: use "{first.casefold()}")'
    elif first.casefold() in _HINTS:
        message += f" ({_HINTS[first.casefold()]})"
    return message


# --------------------------------------------------------------------------------------------
# the rules for each field


def _check_id(value: object) -> str:
    if not isinstance(value, str):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**20:
            fix = f': write it in quotes, "{value}"'
        else:
            fix = ', e.g. "ops-0142"'
        raise CommandRefused(
            f"id must be text of 1 to {MAX_ID_CHARS} printable characters, got {_show(value)}{fix}"
        )
    if not value:
        raise CommandRefused(
            f'id is empty: give 1 to {MAX_ID_CHARS} printable characters, e.g. "ops-0142", '
            "or leave id out"
        )
    if len(value) > MAX_ID_CHARS:
        raise CommandRefused(
            f"id is {len(value)} characters long: shorten it to at most {MAX_ID_CHARS}"
        )
    for position, char in enumerate(value, start=1):
        if not char.isprintable():
            raise CommandRefused(
                f"id contains a character that cannot be printed ({_escape(char)}) at position "
                f"{position}: use printable characters only, no line breaks or tabs"
            )
    return value


def _check_level(value: object) -> int:
    rule = f"level must be an integer from {LEVEL_MIN} to {LEVEL_MAX}"
    if isinstance(value, bool):
        raise CommandRefused(f"{rule}, got {_show(value)}: to switch on or off, use on")
    if isinstance(value, int):
        if not LEVEL_MIN <= value <= LEVEL_MAX:
            raise CommandRefused(f"{rule}, got {_show(value)}")
        return value
    raise CommandRefused(f"{rule}, got {_show(value)}{_number_fix(value)}")


def _check_on(value: object) -> bool:
    rule = "on must be true or false"
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        fix = ": write it without quotes"
    elif _is_number(value):
        fix = ": use true or false, or level for a light level"
    else:
        fix = ""
    raise CommandRefused(f"{rule}, got {_show(value)}{fix}")


def _check_mode(value: object) -> bool:
    if value == "auto":
        return True
    raise CommandRefused(
        f'mode must be "auto" (back to the schedule), got {_show(value)}: to hold a level, '
        "send level or on instead"
    )


def _check_duration(value: object) -> int:
    rule = (
        f"duration must be a whole number of seconds from {DURATION_MIN_S} to {DURATION_MAX_S} "
        "(1 minute to 24 hours)"
    )
    if isinstance(value, int) and not isinstance(value, bool):
        if not DURATION_MIN_S <= value <= DURATION_MAX_S:
            raise CommandRefused(f"{rule}, got {_show(value)}")
        return value
    if isinstance(value, str):
        fix = ": send seconds as a number, e.g. 7200 for 2 hours"
    else:
        fix = _number_fix(value)
    raise CommandRefused(f"{rule}, got {_show(value)}{fix}")


def _check_one_action(given: list[str]) -> None:
    if not given:
        raise CommandRefused(
            "the command has no action: give exactly one of level (0 to 100), on (true or false) "
            f'or mode ("auto"), e.g. {_EXAMPLE}'
        )
    if len(given) > 1:
        raise CommandRefused(
            f"the command has {len(given)} actions ({' and '.join(given)}): give exactly one of "
            "level, on or mode, and send one command per action"
        )


_DURATION_WITH_MODE = (
    'duration does not go with mode "auto", which ends the override at once: remove duration'
)


# --------------------------------------------------------------------------------------------
# showing values in sentences


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number_fix(value: object) -> str:
    """How to fix a number that should have been a JSON integer, when there is something to say."""
    if isinstance(value, str):
        return ": write the number without quotes"
    if isinstance(value, float) and math.isfinite(value):
        if value.is_integer():
            return ": write it without a decimal point"
        return ": round it to a whole number"
    return ""


def _show(value: object) -> str:
    """A JSON value as an operator would recognise it, short, and printable on one line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        digits = str(value)
        return digits if len(digits) <= 20 else f"a {len(digits.lstrip('-'))}-digit number"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else "a number too large to use"
    if isinstance(value, str):
        return f"the text {_quote(value)}"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _quote(text: str, limit: int = 40) -> str:
    shown = text if len(text) <= limit else text[:limit] + "..."
    # escaped so the sentence stays one printable line that always encodes as UTF-8
    return '"' + "".join(char if char.isprintable() else _escape(char) for char in shown) + '"'


def _escape(char: str) -> str:
    return char.encode("unicode_escape").decode("ascii")
