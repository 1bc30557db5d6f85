"""Checks that span sections of the config: references by name, and resources used twice.

They run on the raw merged data (TOML plus environment), tolerating anything malformed there
(the field validation reports that), so a config with a bad field and a bad reference gets both
reported in the same run.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

Loc = tuple[str | int, ...]


def _problem(loc: Loc, message: str, value: Any, fix: str) -> dict[str, Any]:
    return {"type": "cross_reference", "loc": loc, "msg": message, "input": value, "fix": fix}


def _tables(value: Any) -> list[tuple[int, dict[str, Any]]]:
    if not isinstance(value, list):
        return []
    return [(i, item) for i, item in enumerate(value) if isinstance(item, dict)]


def _named(value: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, dict)}


def _known(names: list[str] | set[str]) -> str:
    return ", ".join(sorted(names)) if names else "none defined"


def cross_reference_errors(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """Every reference to a missing name and every resource used twice, as error dicts."""
    errors: list[dict[str, Any]] = []
    zones = _tables(raw.get("zones"))
    profiles = _named(raw.get("profiles"))
    buses = _named(raw.get("buses"))
    meters = _named(raw.get("meters"))

    errors += _duplicate_zone_ids(zones)
    zone_ids = {z["id"] for _, z in zones if isinstance(z.get("id"), str)}

    for i, zone in zones:
        errors += _profile_reference(("zones", i, "profile"), zone, profiles)
        for j, output in _tables(zone.get("outputs")):
            errors += _bus_reference(("zones", i, "outputs", j, "bus"), output, buses)

    for name, meter in meters.items():
        errors += _bus_reference(("meters", name, "bus"), meter, buses)
        errors += _zone_references(
            ("meters", name, "zones"),
            meter,
            zone_ids,
            "list the ids of the zones whose luminaires this meter measures",
        )
    errors += _calendar_references(raw.get("calendar"), zone_ids, zones, profiles)
    errors += _motion_neighbours(zones, zone_ids)
    errors += _zones_on_two_meters(meters)
    errors += _pins_used_twice(zones)
    errors += _modbus_addresses_used_twice(zones, meters, buses)
    errors += _device_profiles(zones, meters)
    return errors


# The kind of device profile each config type needs, and the profile used when none is named.
_DEVICE_KINDS = {
    "modbus_relay": ("relay", "generic-relay"),
    "modbus_dimmer": ("dimmer", "generic-0-10v"),
    "modbus": ("meter", None),
}


def _device_profiles(
    zones: list[tuple[int, dict[str, Any]]], meters: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Each Modbus device names a profile that exists, of the right kind, with that channel."""
    places: list[tuple[Loc, dict[str, Any]]] = [
        (("zones", i, "outputs", j), output)
        for i, zone in zones
        for j, output in _tables(zone.get("outputs"))
    ]
    places += [(("meters", name), meter) for name, meter in meters.items()]
    places = [(loc, t) for loc, t in places if t.get("type") in _DEVICE_KINDS]
    if not places:
        return []  # no Modbus: the profile loader is not even imported
    from controller.settings import current_config_file, device_profile_dirs  # noqa: PLC0415
    from drivers.errors import HardwareConfigError  # noqa: PLC0415
    from drivers.modbus.profiles import load_profile  # noqa: PLC0415

    dirs = device_profile_dirs(current_config_file.get())
    errors = []
    for loc, table in places:
        kind, default = _DEVICE_KINDS[table["type"]]
        device = table.get("device", default)
        if not isinstance(device, str):
            continue  # field validation reports it
        try:
            profile = load_profile(device, dirs)
        except HardwareConfigError as exc:
            errors.append(_problem((*loc, "device"), str(exc), device, _PROFILE_FIX))
            continue
        if profile.kind != kind:
            errors.append(
                _problem(
                    (*loc, "device"),
                    f"{device!r} is the profile of a {profile.kind} ({profile.model}), "
                    f"but a {table['type']} needs a {kind}",
                    device,
                    f"name a {kind} profile here",
                )
            )
            continue
        channel = table.get("channel", 0)
        if loc[0] == "zones" and isinstance(channel, int):
            try:
                profile.channel_address(channel)
            except HardwareConfigError as exc:
                errors.append(
                    _problem((*loc, "channel"), str(exc), channel, "use a channel the module has")
                )
    return errors


_PROFILE_FIX = (
    "name a shipped profile, or add the model's register map as devices/<name>.toml beside "
    "the config file (see docs/modbus-profiles.md)"
)


def _calendar_references(
    calendar: Any,
    zone_ids: set[str],
    zones: list[tuple[int, dict[str, Any]]],
    profiles: dict[str, Any],
) -> list[dict[str, Any]]:
    groups = {g for _, z in zones for g in (z.get("groups") or []) if isinstance(g, str)}
    errors = []
    for i, entry in _tables(calendar):
        errors += _zone_references(
            ("calendar", i, "zones"), entry, zone_ids, "name zones by their id"
        )
        for k, group in enumerate(entry.get("groups") or []):
            if isinstance(group, str) and group not in groups:
                errors.append(
                    _problem(
                        ("calendar", i, "groups", k),
                        f"no zone is in group {group!r} (groups in use: {_known(groups)})",
                        group,
                        "name a group listed in some zone's groups",
                    )
                )
        errors += _profile_reference(("calendar", i, "profile"), entry, profiles)
    return errors


def _motion_neighbours(
    zones: list[tuple[int, dict[str, Any]]], zone_ids: set[str]
) -> list[dict[str, Any]]:
    errors = []
    for i, zone in zones:
        motion = zone.get("motion")
        if not isinstance(motion, dict):
            continue
        for k, neighbour in enumerate(motion.get("neighbours") or []):
            if isinstance(neighbour, str) and (
                neighbour not in zone_ids or neighbour == zone.get("id")
            ):
                errors.append(
                    _problem(
                        ("zones", i, "motion", "neighbours", k),
                        f"{neighbour!r} is not another zone of this unit",
                        neighbour,
                        f"name other zones by their id (known: {_known(zone_ids)})",
                    )
                )
    return errors


def _duplicate_zone_ids(zones: list[tuple[int, dict[str, Any]]]) -> list[dict[str, Any]]:
    first_seen: dict[str, int] = {}
    errors = []
    for i, zone in zones:
        zone_id = zone.get("id")
        if not isinstance(zone_id, str):
            continue
        if zone_id in first_seen:
            errors.append(
                _problem(
                    ("zones", i, "id"),
                    f"zone id {zone_id!r} is already used by zones[{first_seen[zone_id]}]",
                    zone_id,
                    "give every zone its own id",
                )
            )
        else:
            first_seen[zone_id] = i
    return errors


def _profile_reference(
    loc: Loc, table: dict[str, Any], profiles: dict[str, Any]
) -> list[dict[str, Any]]:
    profile = table.get("profile")
    if not isinstance(profile, str) or profile in profiles:
        return []
    return [
        _problem(
            loc,
            f"no profile named {profile!r} (known: {_known(set(profiles))})",
            profile,
            f"fix the name, or add a [profiles.{profile}] table",
        )
    ]


def _zone_references(
    loc: Loc, table: dict[str, Any], zone_ids: set[str], fix: str
) -> list[dict[str, Any]]:
    """Every entry of `table`'s `zones` list that is not a zone id, at `loc` + its index."""
    return [
        _problem(
            (*loc, k), f"no zone with id {zone_id!r} (known: {_known(zone_ids)})", zone_id, fix
        )
        for k, zone_id in enumerate(table.get("zones") or [])
        if isinstance(zone_id, str) and zone_id not in zone_ids
    ]


def _bus_reference(loc: Loc, table: dict[str, Any], buses: dict[str, Any]) -> list[dict[str, Any]]:
    bus = table.get("bus")
    if not isinstance(bus, str) or bus in buses:
        return []
    return [
        _problem(
            loc,
            f"no bus named {bus!r} (known: {_known(set(buses))})",
            bus,
            f"fix the name, or add a [buses.{bus}] table with type = 'rtu' or 'tcp'",
        )
    ]


def _zones_on_two_meters(meters: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    metered_by: dict[str, str] = {}
    errors = []
    for name, meter in meters.items():
        for k, zone_id in enumerate(meter.get("zones") or []):
            if not isinstance(zone_id, str):
                continue
            if zone_id in metered_by and metered_by[zone_id] == name:
                errors.append(
                    _problem(
                        ("meters", name, "zones", k),
                        f"zone {zone_id!r} is listed twice",
                        zone_id,
                        "list each zone once",
                    )
                )
            elif zone_id in metered_by:
                errors.append(
                    _problem(
                        ("meters", name, "zones", k),
                        f"zone {zone_id!r} is already measured by meter {metered_by[zone_id]!r}",
                        zone_id,
                        "list each zone under one meter only, or its energy is counted twice",
                    )
                )
            metered_by.setdefault(zone_id, name)
    return errors


def _pins_used_twice(zones: list[tuple[int, dict[str, Any]]]) -> list[dict[str, Any]]:
    """A GPIO pin drives one thing; only identical photocells may be shared between zones."""
    users: dict[int, list[tuple[Loc, dict[str, Any]]]] = defaultdict(list)
    for i, zone in zones:
        for j, output in _tables(zone.get("outputs")):
            users[_pin(output)].append((("zones", i, "outputs", j, "pin"), output))
        for j, sensor in _tables(zone.get("motion_inputs")):
            users[_pin(sensor)].append((("zones", i, "motion_inputs", j, "pin"), sensor))
        light = zone.get("light_input")
        if isinstance(light, dict):
            users[_pin(light)].append((("zones", i, "light_input", "pin"), light))
    errors = []
    for pin, places in users.items():
        if pin < 0 or len(places) < 2:
            continue
        first_loc, first = places[0]
        shared_photocell = all(
            table.get("type") == "gpio_photocell"
            and _photocell_defaults() | table == _photocell_defaults() | first
            for _, table in places
        )
        if shared_photocell:
            continue
        for loc, _ in places[1:]:
            errors.append(
                _problem(
                    loc,
                    f"GPIO {pin} is already used at {_path(first_loc)}",
                    pin,
                    "give each relay, dimmer and sensor its own pin (only a photocell may be "
                    "shared, with identical settings)",
                )
            )
    return errors


def _photocell_defaults() -> dict[str, Any]:
    from controller.settings import GpioPhotocellInput  # noqa: PLC0415 - settings imports us

    return {
        name: field.default
        for name, field in GpioPhotocellInput.model_fields.items()
        if not field.is_required()
    }


def _pin(table: dict[str, Any]) -> int:
    pin = table.get("pin")
    return pin if isinstance(pin, int) and not isinstance(pin, bool) else -1


def _modbus_addresses_used_twice(
    zones: list[tuple[int, dict[str, Any]]],
    meters: dict[str, dict[str, Any]],
    buses: dict[str, dict[str, Any]],
) -> list[dict[str, Any]]:
    """One device id on one bus is one device: its channels may serve several zones."""
    kind_at: dict[tuple[Any, Any], tuple[str, Loc]] = {}
    channel_at: dict[tuple[Any, Any, Any], Loc] = {}
    errors = []
    places: list[tuple[Loc, dict[str, Any]]] = [
        (("zones", i, "outputs", j), output)
        for i, zone in zones
        for j, output in _tables(zone.get("outputs"))
        if str(output.get("type", "")).startswith("modbus")
    ]
    places += [
        (("meters", name), meter) for name, meter in meters.items() if meter.get("type") == "modbus"
    ]
    for loc, table in places:
        address = (table.get("bus"), table.get("device_id"))
        if not isinstance(address[0], str) or not isinstance(address[1], int):
            continue
        if buses.get(address[0], {}).get("type") == "rtu" and not 1 <= address[1] <= 247:
            errors.append(
                _problem(
                    (*loc, "device_id"),
                    f"device id {address[1]} cannot be used on an RS-485 (rtu) bus",
                    address[1],
                    "set the device's Modbus address to 1-247 (0 is broadcast)",
                )
            )
        kind_of = _DEVICE_KINDS.get(str(table.get("type")), ("", None))
        kind = f"{table.get('type')}:{table.get('device', kind_of[1] or '')}"
        is_meter = loc[0] == "meters"
        if address in kind_at and (kind_at[address][0] != kind or is_meter):
            errors.append(
                _problem(
                    (*loc, "device_id"),
                    f"device {address[1]} on bus {address[0]!r} is already a different device "
                    f"at {_path(kind_at[address][1])}",
                    address[1],
                    "give each device on a bus its own Modbus address (device_id)",
                )
            )
            continue
        kind_at.setdefault(address, (kind, loc))
        if loc[0] == "zones":
            channel = (*address, table.get("channel", 0))
            if channel in channel_at:
                errors.append(
                    _problem(
                        (*loc, "channel"),
                        f"channel {channel[2]} of device {address[1]} on bus {address[0]!r} "
                        f"is already used at {_path(channel_at[channel])}",
                        channel[2],
                        "give each output its own channel",
                    )
                )
            channel_at.setdefault(channel, loc)
    return errors


def _path(loc: Loc) -> str:
    """`("zones", 2, "profile")` as people read it: `zones[2].profile`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
