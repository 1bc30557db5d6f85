"""Finding, reading and validating the config file, and explaining what is wrong with it.

`load_settings()` either returns valid `Settings` or raises `ConfigError` listing every problem
found, each as a `Problem` with the key path, the bad value, what is wrong and how to fix it.
"""

from __future__ import annotations

import difflib
import json
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel
from pydantic_settings import SettingsError

from controller.errors import ConfigError
from controller.plans import CONSEQUENCE, displaced_steps
from controller.settings import (
    DEFAULT_CONFIG,
    ENV_PREFIX,
    ConfigProblems,
    Settings,
    current_config_file,
)

CONFIG_ENV = "STREETLIGHT_CONFIG"

# How to fix a bad value, by the key's name, where the rule alone does not say it.
_FIX_BY_KEY = {
    "latitude": "use decimal degrees, north positive (Sakon Nakhon is 17.155)",
    "longitude": "use decimal degrees, east positive (Sakon Nakhon is 104.147)",
    "timezone": "use an IANA name such as 'Asia/Bangkok'",
    "port": "MQTT brokers listen on 1883, or 8883 with TLS; Modbus TCP on 502",
    "on_level": "a percentage from 1 to 100",
    "failsafe_level": "a percentage from 0 to 100; keep it high enough to light the street",
    "interval": "one of 300, 600, 900, 1800 or 3600 seconds",
    "device_id": "the device's Modbus address as set on it: 1-247 on RS-485, 0-255 on TCP",
    "rated_w": "the zone's total rated power at full output, in watts",
    "baseline_w": "the total power of the lamps the donation replaced, in watts",
}


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong (or worth a warning) in the config, said for people."""

    path: str
    message: str
    fix: str | None = None
    value: str | None = None
    severity: Literal["error", "warning"] = "error"
    env_var: str | None = None

    def __str__(self) -> str:
        where = self.path or "(file)"
        text = f"{where}: {self.message}"
        if self.value is not None:
            text += f" (got {self.value})"
        if self.env_var:
            text += f" [set by the environment variable {self.env_var}]"
        if self.fix:
            text += f"\n    fix: {self.fix}"
        return text


def locate_config(
    path: str | os.PathLike[str] | None, environ: Mapping[str, str] | None = None
) -> Path:
    """The config file: `path`, else $STREETLIGHT_CONFIG, else /etc/streetlight/config.toml."""
    environ = os.environ if environ is None else environ
    if path:
        return Path(path)
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV])
    return DEFAULT_CONFIG


def load_settings(path: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Load and validate the unit's config; raise ConfigError listing every problem at once.

    `overrides` take precedence over environment variables and the file (used by the demo and
    by tests, e.g. `data_dir=...`).
    """
    config_file = locate_config(path)
    _read_toml(config_file)  # a missing file or a syntax error stops here, said plainly
    token = current_config_file.set(config_file.resolve())
    try:
        settings = Settings(**overrides)
    except ConfigProblems as problems:
        found = explain(problems.errors, problems.raw) + _unknown_sections_in_environment()
        raise ConfigError(config_file, found) from None
    except SettingsError as exc:  # e.g. an environment variable that is not valid JSON
        raise ConfigError(
            config_file,
            [
                Problem(
                    "",
                    f"an environment variable could not be read: {exc}",
                    fix=f"unset or correct the {ENV_PREFIX}* variables",
                )
            ],
        ) from None
    finally:
        current_config_file.reset(token)
    if unknown := _unknown_sections_in_environment():
        raise ConfigError(config_file, unknown)
    return settings


def _unknown_sections_in_environment() -> list[Problem]:
    """pydantic-settings ignores STREETLIGHT_* variables naming no section; a typo must show."""
    known = {name.upper() for name in Settings.model_fields} | {CONFIG_ENV.removeprefix(ENV_PREFIX)}
    problems = []
    for name in sorted(os.environ):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX):
            continue
        section = upper.removeprefix(ENV_PREFIX).split("__", 1)[0]
        if section not in known:
            guess = difflib.get_close_matches(section, sorted(known), n=1)
            problems.append(
                Problem(
                    "",
                    f"the environment variable {name} names no config section",
                    fix=(f"did you mean {ENV_PREFIX}{guess[0]}...? " if guess else "")
                    + f"unset it, or use {ENV_PREFIX}<SECTION>__<KEY>",
                )
            )
    return problems


def _read_toml(config_file: Path) -> dict[str, Any]:
    try:
        text = config_file.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(
            config_file,
            [
                Problem(
                    "",
                    f"the config file {config_file} does not exist",
                    fix=f"pass --config FILE, set {CONFIG_ENV}, or create {DEFAULT_CONFIG} "
                    "(deploy/examples/ has templates)",
                )
            ],
        ) from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise ConfigError(
            config_file,
            [
                Problem(
                    "",
                    f"the config file cannot be read: {exc}",
                    fix="give a readable UTF-8 TOML file",
                )
            ],
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            config_file,
            [
                Problem(
                    "",
                    f"TOML syntax error: {exc}",
                    fix="correct the line it names; strings need quotes, tables look like "
                    "[section] and lists of tables like [[zones]]",
                )
            ],
        ) from None


def explain(errors: list[dict[str, Any]], raw: dict[str, Any]) -> list[Problem]:
    """Turn pydantic and cross-reference error dicts into Problems, one per distinct place."""
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for error in errors:
        loc = _clean_loc(tuple(error.get("loc", ())), raw)
        message, fix = _sentence(error, loc, raw)
        path = _path(loc) + _zone_label(loc, raw)
        if (path, message) in seen:
            continue
        seen.add((path, message))
        problems.append(
            Problem(
                path=path,
                message=message,
                fix=fix,
                value=_show(error.get("input"), error.get("type", "")),
                env_var=_env_var_for(loc),
            )
        )
    return problems


def _clean_loc(loc: tuple[Any, ...], raw: Any) -> tuple[Any, ...]:
    """Drop pydantic's union tags from a location, so it reads as the keys in the file."""
    cleaned: list[Any] = []
    node = raw
    for part in loc:
        if isinstance(node, dict) and part not in node and node.get("type") == part:
            continue  # the discriminator's tag, not a key
        cleaned.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
    return tuple(cleaned)


def _path(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part == "[key]":
            text += " (the name)"
        else:
            text += f".{part}" if text else str(part)
    return text


def _zone_label(loc: tuple[Any, ...], raw: dict[str, Any]) -> str:
    """Zones are a list, so name the zone a `zones[i]` path is in."""
    zones = raw.get("zones")
    if len(loc) > 1 and loc[0] == "zones" and isinstance(loc[1], int) and isinstance(zones, list):
        zone = zones[loc[1]] if loc[1] < len(zones) else None
        if isinstance(zone, dict) and isinstance(zone.get("id"), str):
            return f" (zone {zone['id']!r})"
    return ""


def _sentence(
    error: dict[str, Any], loc: tuple[Any, ...], raw: dict[str, Any]
) -> tuple[str, str | None]:
    kind = error.get("type", "")
    message = str(error.get("msg", "is not valid"))
    key = next((p for p in reversed(loc) if isinstance(p, str) and p != "[key]"), "")
    fix = _FIX_BY_KEY.get(key)
    if kind == "cross_reference":
        return message, error.get("fix")
    if kind == "missing" and len(loc) == 1 and key in ("unit", "zones"):
        table = "[unit]" if key == "unit" else "[[zones]]"
        return "is required but missing", f"add a {table} table (see deploy/examples/)"
    if kind == "missing":
        return "is required but missing", f"add {key} to this table" + (f" ({fix})" if fix else "")
    if kind == "string_too_short":
        return "must not be empty", fix
    if kind == "extra_forbidden":
        known = _known_keys(loc[:-1], raw)
        guess = difflib.get_close_matches(str(loc[-1]), known, n=1) if known else []
        hint = f"did you mean {guess[0]!r}? " if guess else ""
        listing = f" (known keys here: {', '.join(sorted(known))})" if known else ""
        return "is not a known key", f"{hint}remove or rename it{listing}"
    if kind == "union_tag_invalid":
        ctx = error.get("ctx", {})
        return (
            f"type {ctx.get('tag')!r} is not a known kind",
            f"use one of {ctx.get('expected_tags')}",
        )
    if kind == "union_tag_not_found":
        return "needs a 'type' key saying what kind of device it is", "add type = '...'"
    if kind in ("value_error", "assertion_error"):
        # our validators' messages already name the value and the fix
        return message.removeprefix("Value error, ").removeprefix("Assertion failed, "), None
    if kind == "too_short" and key == "zones":
        return "the unit needs at least one zone", "add a [[zones]] table"
    if kind == "too_short" and key == "outputs":
        return "a zone needs at least one output", "add outputs = [{ type = 'sim' }] or a real one"
    return message.replace("Input should be", "must be"), fix


def _show(value: Any, kind: str) -> str | None:
    """The value as it is written in TOML."""
    if kind in ("missing", "value_error") or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else repr(value)


def _env_var_for(loc: tuple[Any, ...]) -> str | None:
    names = [str(p).upper() for p in loc if isinstance(p, str) and p != "[key]"]
    for length in range(len(names), 0, -1):
        name = ENV_PREFIX + "__".join(names[:length])
        if any(k.upper() == name for k in os.environ):
            return name
    return None


def _known_keys(loc: tuple[Any, ...], raw: Any) -> list[str]:
    """The keys the table at `loc` accepts (choosing a union member by its 'type')."""
    annotation: Any = Settings
    node = raw
    for part in loc:
        annotation = _resolve(annotation, node)
        if isinstance(part, int):
            args = typing.get_args(annotation)
            annotation = args[0] if args else None
            node = node[part] if isinstance(node, list) and part < len(node) else None
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(part)
            if field is None:
                return []
            annotation = field.annotation
            node = node.get(part) if isinstance(node, dict) else None
        elif typing.get_origin(annotation) is dict:
            annotation = typing.get_args(annotation)[1]
            node = node.get(part) if isinstance(node, dict) else None
        else:
            return []
    annotation = _resolve(annotation, node)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _resolve(annotation: Any, node: Any) -> Any:
    """Unwrap Annotated and Optional; pick the union member whose `type` matches the data."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [m for m in typing.get_args(annotation) if m is not type(None)]
        tag = node.get("type") if isinstance(node, dict) else None
        for member in members:
            if isinstance(member, type) and issubclass(member, BaseModel):
                type_field = member.model_fields.get("type")
                if type_field is None or tag in typing.get_args(type_field.annotation):
                    return member
        return members[0] if len(members) == 1 else annotation
    return annotation


def config_warnings(settings: Settings, today: date | None = None) -> list[Problem]:
    """Things that are valid but will not work as meant: on this machine, or on some nights.

    `today` starts the year over which profile steps are checked (default: no step check).
    """
    warnings: list[Problem] = []
    if today is not None:
        for note in displaced_steps(settings, today):
            warnings.append(
                Problem(
                    f"profiles.{note.profile}.steps[{note.index}]",
                    f"{note.at!r} falls {note.why} on {note.nights} night(s) of the coming "
                    f"year (first the night of {note.first}); {CONSEQUENCE[note.why]}",
                    fix="nothing to change if that is what you want; for a step at its own "
                    "time every night, anchor it to on, off or virtual_midnight with an offset "
                    "instead of a clock time",
                    severity="warning",
                )
            )
    mqtt = settings.mqtt
    if mqtt.enabled:
        for key in ("tls_ca_file", "tls_cert_file", "tls_key_file", "password_file"):
            file = getattr(mqtt, key)
            if file is not None and not Path(file).is_file():
                warnings.append(
                    Problem(
                        f"mqtt.{key}",
                        f"{file} does not exist on this machine",
                        fix="copy the file there before starting the unit, or the "
                        "connection to the broker will fail",
                        severity="warning",
                    )
                )
    for name, bus in settings.buses.items():
        if bus.type == "rtu" and not Path(bus.port).exists():
            warnings.append(
                Problem(
                    f"buses.{name}.port",
                    f"{bus.port} does not exist on this machine",
                    fix="plug in the RS-485 adapter, or use a stable name from /dev/serial/by-id/",
                    severity="warning",
                )
            )
    return warnings
