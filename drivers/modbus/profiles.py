"""Register maps of Modbus device models, one TOML file per model.

A technician adds a model by adding a file, not code: docs/modbus-profiles.md describes the
format. The shipped files live in `PACKAGE_PROFILES`; a site may keep more in directories of
its own, which are searched first, so a site file replaces a shipped one of the same name.

A profile says where each value lives (function, address), how its 16-bit words make a
number (data type, word order) and what to multiply it by (scale). `Register.decode` and
`Register.encode` are each other's inverse, so the driver and the simulated device agree by
construction. Nothing here imports pymodbus.
"""

from __future__ import annotations

import math
import struct
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn, cast

from drivers.errors import HardwareConfigError

PACKAGE_PROFILES: Path = Path(__file__).with_name("profiles")

Function = Literal["coil", "discrete", "holding", "input"]
DataType = Literal["u16", "s16", "u32", "s32", "float32", "bool"]
WordOrder = Literal["big", "little"]
Combine = Literal["sum", "mean"]
Kind = Literal["meter", "relay", "dimmer"]

FUNCTIONS: tuple[Function, ...] = ("coil", "discrete", "holding", "input")
NUMBER_TYPES: tuple[DataType, ...] = ("u16", "s16", "u32", "s32", "float32")
# What a meter profile maps, and the unit each value must have after scaling.
METER_QUANTITIES: dict[str, str] = {
    "voltage": "V",
    "current": "A",
    "power": "W",
    "power_factor": "",
    "frequency": "Hz",
    "energy_kwh": "kWh",
}
# The Modbus limit for one read of holding or input registers (function 3 or 4).
MAX_READ_REGISTERS = 125
DOC = "docs/modbus-profiles.md"

_INT_RANGES: dict[str, tuple[int, int]] = {
    "u16": (0, 0xFFFF),
    "s16": (-0x8000, 0x7FFF),
    "u32": (0, 0xFFFF_FFFF),
    "s32": (-0x8000_0000, 0x7FFF_FFFF),
}


@dataclass(frozen=True)
class Register:
    """Where one value lives on a device and how to turn its words into a number.

    `address` is a 0-based register (or bit) address; a tuple of addresses means the value is
    made of several registers of the same format, combined by `combine` (the three phases of a
    meter: "sum" for currents, "mean" for voltages). `scale` multiplies the raw number into
    `unit`. `word_order` is the order of the two words of a 32-bit value: "big" = high word at
    the lower address, "little" = low word first.
    """

    name: str
    function: Function
    address: int | tuple[int, ...]
    type: DataType
    word_order: WordOrder = "big"
    scale: float = 1.0
    unit: str = ""
    combine: Combine | None = None

    @property
    def addresses(self) -> tuple[int, ...]:
        """Every address the value is made of (one unless combined)."""
        return self.address if isinstance(self.address, tuple) else (self.address,)

    @property
    def width(self) -> int:
        """Registers one value takes: 2 for the 32-bit types, else 1 (a bool takes one bit)."""
        return 2 if self.type in ("u32", "s32", "float32") else 1

    def decode(self, words: Sequence[int]) -> float:
        """The scaled value held in `words`: the `width` raw words at one address, in order."""
        if len(words) != self.width:
            raise ValueError(f"{self.name} takes {self.width} word(s), got {len(words)}")
        if self.type == "bool":
            return float(bool(words[0]))
        high, low = (words[0], words[-1]) if self.word_order == "big" else (words[-1], words[0])
        if self.type == "float32":
            raw: float = struct.unpack(">f", struct.pack(">HH", high, low))[0]
        elif self.width == 2:
            raw = (high << 16) | low
            if self.type == "s32" and raw >= 0x8000_0000:
                raw -= 0x1_0000_0000
        else:
            raw = words[0] - 0x1_0000 if self.type == "s16" and words[0] >= 0x8000 else words[0]
        return raw * self.scale

    def encode(self, value: float) -> list[int]:
        """The raw words that `decode` turns into `value`, rounded to the register's resolution.

        Raises ValueError when the value does not fit the data type after scaling.
        """
        raw = value / self.scale
        if self.type == "bool":
            return [1 if value else 0]
        if self.type == "float32":
            if math.isfinite(raw) and abs(raw) > 3.4028234663852886e38:
                raise ValueError(f"{value} does not fit {self.name} (float32)")
            high, low = struct.unpack(">HH", struct.pack(">f", raw))
        else:
            low_limit, high_limit = _INT_RANGES[self.type]
            number = round(raw)
            if not low_limit <= number <= high_limit:
                raise ValueError(
                    f"{value} does not fit {self.name} ({self.type} with scale {self.scale:g})"
                )
            number &= 0xFFFF_FFFF
            if self.width == 1:
                return [number & 0xFFFF]
            high, low = number >> 16, number & 0xFFFF
        return [high, low] if self.word_order == "big" else [low, high]


@dataclass(frozen=True)
class Channels:
    """The outputs of a relay or 0-10 V module: `count` channels from `address` up, one each.

    A relay module has one coil per channel (on/off). A 0-10 V module has one holding
    register per channel, where `full_scale` is the raw value for 100 % (10 V).
    """

    function: Literal["coil", "holding"]
    address: int
    count: int
    type: Literal["bool", "u16"]
    full_scale: int | None = None


@dataclass(frozen=True)
class ReadBlock:
    """One read request: `count` registers of `function` from `address`."""

    function: Function
    address: int
    count: int


@dataclass(frozen=True)
class DeviceProfile:
    """One device model: what it is, where its map comes from, and the map itself.

    `name` is the file's stem, the name a config uses; `aliases` are other names for the same
    model. A meter profile has `registers` (exactly the `METER_QUANTITIES`); a relay or dimmer
    profile has `channels`. `origin` is the file it was read from.
    """

    name: str
    model: str
    kind: Kind
    source: str
    notes: str = ""
    registers: Mapping[str, Register] = field(default_factory=dict)
    channels: Channels | None = None
    aliases: tuple[str, ...] = ()
    max_read_registers: int = MAX_READ_REGISTERS
    origin: str = ""

    def channel_address(self, channel: int) -> int:
        """The coil or register address of `channel` (0-based); HardwareConfigError if none."""
        if self.channels is None:
            raise HardwareConfigError(
                f"the {self.model} ({self.name}) is a {self.kind}, which has no output channels: "
                "check the output's `device` in the config"
            )
        if not 0 <= channel < self.channels.count:
            raise HardwareConfigError(
                f"the {self.model} ({self.name}) has channels 0 to {self.channels.count - 1}, "
                f"not {channel}: check the output's `channel` in the config (counted from 0)"
            )
        return self.channels.address + channel

    def read_plan(self) -> tuple[ReadBlock, ...]:
        """The fewest reads that cover every register, none longer than `max_read_registers`.

        Registers of one function close together are read in one block, unused registers in
        between included (devices such as the Eastron meters answer for those).
        """
        spans: dict[Function, list[tuple[int, int]]] = {}
        for register in self.registers.values():
            for address in register.addresses:
                spans.setdefault(register.function, []).append((address, register.width))
        blocks: list[ReadBlock] = []
        for function in FUNCTIONS:
            start = end = -1
            for address, width in sorted(spans.get(function, ())):
                if start >= 0 and address + width - start <= self.max_read_registers:
                    end = max(end, address + width)
                    continue
                if start >= 0:
                    blocks.append(ReadBlock(function, start, end - start))
                start, end = address, address + width
            if start >= 0:
                blocks.append(ReadBlock(function, start, end - start))
        return tuple(blocks)


# --------------------------------------------------------------------------------------------
# reading files


def load_profile(name: str, extra_dirs: Sequence[Path] = ()) -> DeviceProfile:
    """The profile called `name` (a file stem or an alias), looked for in `extra_dirs` first.

    Raises HardwareConfigError with a sentence: an unknown name lists the known ones and says
    where to add a file; a broken file names the key and how to fix it.
    """
    files = _profile_files(extra_dirs)
    if name in files:
        return _read_file(files[name])
    known: list[DeviceProfile] = []
    broken: list[str] = []
    for path in files.values():
        try:
            profile = _read_file(path)
        except HardwareConfigError as exc:
            broken.append(str(exc))
            continue
        if name in profile.aliases:
            return profile
        known.append(profile)
    names = ", ".join(
        p.name + (f" (also {', '.join(p.aliases)})" if p.aliases else "") for p in known
    )
    target = Path(extra_dirs[0]) if extra_dirs else PACKAGE_PROFILES
    message = (
        f'there is no device profile "{name}": the known profiles are {names or "none"}. '
        f"Check the device name in the config, or describe the model in a file {name}.toml "
        f"in {target} (see {DOC})"
    )
    if broken:
        message += ". These profile files could not be read: " + " | ".join(broken)
    raise HardwareConfigError(message)


def known_profiles(extra_dirs: Sequence[Path] = ()) -> dict[str, DeviceProfile]:
    """Every profile by name and by alias; `extra_dirs` come first, then the shipped files.

    A file in an earlier directory replaces one of the same name in a later one, and a name
    wins over another profile's alias. Raises HardwareConfigError for the first broken file.
    """
    profiles = {stem: _read_file(path) for stem, path in _profile_files(extra_dirs).items()}
    by_name = dict(profiles)
    for profile in profiles.values():
        for alias in profile.aliases:
            by_name.setdefault(alias, profile)
    return by_name


def _profile_files(extra_dirs: Sequence[Path]) -> dict[str, Path]:
    """File stem -> path of every *.toml in the directories, the first directory winning."""
    found: dict[str, Path] = {}
    for folder in (*(Path(d) for d in extra_dirs), PACKAGE_PROFILES):
        if folder.is_dir():
            for path in sorted(folder.glob("*.toml")):
                found.setdefault(path.stem, path)
    return found


def _read_file(path: Path) -> DeviceProfile:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise HardwareConfigError(
            f"device profile {path} is not UTF-8 text: save it as UTF-8"
        ) from None
    except OSError as exc:
        raise HardwareConfigError(
            f"device profile {path} cannot be read ({exc.strerror}): check that it exists and "
            "that the user running streetlight may read it"
        ) from None
    return parse_profile(text, path.stem, str(path))


# --------------------------------------------------------------------------------------------
# checking a file


def parse_profile(text: str, name: str, origin: str) -> DeviceProfile:
    """The profile in the TOML `text`, named `name`; `origin` names the file in messages.

    Raises HardwareConfigError with a sentence that gives the key path (`registers.power.type`)
    and what to write instead.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise HardwareConfigError(
            f"device profile {origin} is not valid TOML ({exc}): fix that line; {DOC} shows "
            "the format"
        ) from None
    root = _Table(origin, "", data)
    device = root.table("device", required=True)
    kind = cast(Kind, device.choice("kind", ("meter", "relay", "dimmer")))
    model = device.text("model")
    source = device.text("source")
    notes = device.text("notes", default="")
    aliases = device.text_list("aliases")
    max_read = device.integer("max_read_registers", 1, MAX_READ_REGISTERS, MAX_READ_REGISTERS)
    device.finish()
    registers: dict[str, Register] = {}
    channels: Channels | None = None
    if kind == "meter":
        registers = _meter_registers(root)
        widest = max(r.width for r in registers.values())
        if max_read < widest:
            device.fail(
                "max_read_registers",
                f"is {max_read}, less than the {widest} registers one value takes; set it to "
                f"{widest} or more",
            )
        if root.has("channels"):
            root.fail("channels", "is for relay and dimmer modules, not meters: remove it")
    else:
        channels = _channels(root, kind)
        if root.has("registers"):
            root.fail("registers", f"is for meters, not {kind} modules: remove it")
    root.finish()
    return DeviceProfile(
        name=name,
        model=model,
        kind=kind,
        source=source,
        notes=notes,
        registers=registers,
        channels=channels,
        aliases=tuple(aliases),
        max_read_registers=max_read,
        origin=origin,
    )


def _meter_registers(root: _Table) -> dict[str, Register]:
    table = root.table("registers", required=True)
    wanted = ", ".join(METER_QUANTITIES)
    for key in table.names():
        if key not in METER_QUANTITIES:
            table.fail(key, f"is not a value the meter driver reads; a meter maps exactly {wanted}")
    registers: dict[str, Register] = {}
    for quantity, unit in METER_QUANTITIES.items():
        if not table.has(quantity):
            table.fail(
                quantity,
                f"is missing: a meter profile maps exactly {wanted}; add a [registers.{quantity}] "
                "table",
            )
        registers[quantity] = _register(table.table(quantity, required=True), quantity, unit)
    return registers


def _register(table: _Table, name: str, unit: str) -> Register:
    function = cast(Function, table.choice("function", ("input", "holding")))
    data_type = cast(DataType, table.choice("type", NUMBER_TYPES))
    word_order = cast(WordOrder, table.choice("word_order", ("big", "little"), "big"))
    scale = table.number("scale", 1.0)
    if scale == 0 or not math.isfinite(scale):
        table.fail("scale", f"is {scale}; use the factor from the datasheet, e.g. scale = 0.1")
    given_unit = table.text("unit", default=unit)
    if given_unit != unit:
        table.fail(
            "unit",
            f'is "{given_unit}", but the driver reports {name} in "{unit}": set unit = "{unit}" '
            "and choose `scale` so that raw value x scale is in that unit (e.g. scale = 0.001 "
            "for a counter in Wh)",
        )
    width = 2 if data_type in ("u32", "s32", "float32") else 1
    address = table.address("address", width)
    combine_value = table.choice("combine", ("sum", "mean"), "")
    combine = cast(Combine, combine_value) if combine_value else None
    if isinstance(address, tuple) and combine is None:
        table.fail(
            "combine",
            'is missing: with a list of addresses, say how to combine them: "sum" (currents, '
            'powers) or "mean" (voltages)',
        )
    if isinstance(address, int) and combine is not None:
        table.fail("combine", "only applies to a list of addresses: remove it")
    table.finish()
    return Register(name, function, address, data_type, word_order, scale, given_unit, combine)


def _channels(root: _Table, kind: Kind) -> Channels:
    table = root.table("channels", required=True)
    if kind == "relay":
        function = table.choice("function", ("coil",), "coil")
        data_type = table.choice("type", ("bool",), "bool")
        if table.has("full_scale"):
            table.fail("full_scale", "is for 0-10 V modules, not relays: remove it")
    else:
        function = table.choice("function", ("holding",), "holding")
        data_type = table.choice("type", ("u16",), "u16")
    address = table.integer("address", 0, 0xFFFF)
    count = table.integer("count", 1, 256)
    if address + count > 0x1_0000:
        table.fail("count", f"is {count}: channels from {address} on would pass address 65535")
    full_scale = table.integer("full_scale", 1, 0xFFFF) if kind == "dimmer" else None
    table.finish()
    return Channels(
        function=cast(Literal["coil", "holding"], function),
        address=address,
        count=count,
        type=cast(Literal["bool", "u16"], data_type),
        full_scale=full_scale,
    )


# What to write for a missing key, by key name.
_HINTS: dict[str, str] = {
    "device": 'add a [device] table with model, kind and source, e.g. kind = "meter"',
    "model": 'add the maker and model, e.g. model = "Eastron SDM120"',
    "kind": 'add kind = "meter", "relay" or "dimmer"',
    "source": "add where the register map comes from: the datasheet's title and version",
    "function": 'add function = "input" (read with function 4) or "holding" (function 3)',
    "type": 'add the data type, e.g. type = "float32"',
    "address": "add the 0-based address from the datasheet, e.g. address = 0x000C "
    "(a datasheet's 30013 is 0x000C)",
    "registers": "add a [registers.NAME] table for each value the meter driver reads",
    "channels": "add a [channels] table with address and count",
    "count": "add the number of channels on the module, e.g. count = 8",
    "full_scale": "add the raw value for 100 % (10 V), e.g. full_scale = 10000 for a module "
    "set in millivolts",
}


class _Table:
    """One TOML table being checked: typed look-ups that fail with the key's full path."""

    def __init__(self, origin: str, path: str, data: Mapping[str, Any]) -> None:
        self.origin = origin
        self.path = path
        self.data = data
        self.used: set[str] = set()

    def fail(self, key: str, problem: str) -> NoReturn:
        raise HardwareConfigError(f"device profile {self.origin}: {self.path}{key} {problem}")

    def names(self) -> list[str]:
        return list(self.data)

    def has(self, key: str) -> bool:
        return key in self.data

    def _get(self, key: str, required: bool) -> Any:
        self.used.add(key)
        if key not in self.data and required:
            self.fail(key, "is missing; " + _HINTS.get(key, "add it"))
        return self.data.get(key)

    def table(self, key: str, *, required: bool) -> _Table:
        value = self._get(key, required)
        if value is None:
            value = {}
        if not isinstance(value, dict):
            self.fail(key, f"must be a table ([{self.path}{key}]), not {value!r}")
        return _Table(self.origin, f"{self.path}{key}.", value)

    def text(self, key: str, *, default: str | None = None) -> str:
        value = self._get(key, default is None)
        if value is None:
            return cast(str, default)
        if not isinstance(value, str) or not value.strip():
            self.fail(key, f'must be text in quotes, e.g. {key} = "...", not {value!r}')
        return value

    def text_list(self, key: str) -> list[str]:
        value = self._get(key, False)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.fail(key, f'must be a list of names, e.g. {key} = ["pzem-004t"], not {value!r}')
        return list(value)

    def integer(self, key: str, low: int, high: int, default: int | None = None) -> int:
        value = self._get(key, default is None)
        if value is None:
            return cast(int, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.fail(key, f"must be a whole number from {low} to {high}, not {value!r}")
        return value

    def number(self, key: str, default: float) -> float:
        value = self._get(key, False)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(key, f"must be a number, e.g. {key} = 0.1, not {value!r}")
        return float(value)

    def choice(self, key: str, options: Sequence[str], default: str | None = None) -> str:
        value = self._get(key, default is None)
        if value is None:
            return cast(str, default)
        if value not in options:
            listed = ", ".join(f'"{o}"' for o in options)
            self.fail(key, f"is {value!r}; use one of {listed}")
        return cast(str, value)

    def address(self, key: str, width: int) -> int | tuple[int, ...]:
        value = self._get(key, True)
        values = value if isinstance(value, list) else [value]
        last = 0x1_0000 - width
        if (
            not values
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in values)
            or not all(0 <= v <= last for v in values)
        ):
            self.fail(
                key,
                f"must be an address from 0 to {last} (0x{last:04X}) or a list of them, "
                f"e.g. address = 0x000C, not {value!r}",
            )
        if isinstance(value, list):
            if len(set(values)) != len(values) or len(values) < 2:
                self.fail(key, "must list two or more different addresses, or be one address")
            return tuple(values)
        return cast(int, value)

    def finish(self) -> None:
        """Fail on a key nobody asked for: a typo would otherwise be ignored."""
        for key in self.data:
            if key not in self.used:
                known = ", ".join(sorted(self.used))
                self.fail(key, f"is not a known key here (a typo?); the keys here are {known}")
