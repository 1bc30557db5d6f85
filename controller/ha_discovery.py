"""Home Assistant MQTT discovery: the retained messages that make a unit appear in Home Assistant.

Pure functions of the settings, no I/O. The caller publishes every pair from
`discovery_messages` retained with QoS 1 when it connects, and again whenever Home Assistant
announces itself with `BIRTH_PAYLOAD` on `BIRTH_TOPIC` (Home Assistant's MQTT documentation
recommends resending on its birth message, after a short random delay, even for retained
configs). After a config reload it publishes `removal_messages(old, new)` the same way, so Home
Assistant forgets the entities of zones and meters that are gone.

What appears, all on one Home Assistant device per unit:

- per zone, a dimmable light (MQTT light, `schema: template`) on the zone's `state` and `set`
  topics. Its command templates render only the contract's commands: `{"on": true}`,
  `{"on": false}` and `{"level": N}` with N from 1 to 100, so the unit never refuses what Home
  Assistant sends;
- per zone, a button "back to schedule" that sends `{"mode": "auto"}`;
- per meter, sensors for power (W) and the meter's own energy total (kWh, `total_increasing`,
  so the Energy dashboard accepts it), and diagnostic sensors for voltage, current, power
  factor and frequency. All meters of a unit share `P/U/meter`; each sensor's value template
  renders an empty string for another meter's reading, which Home Assistant ignores for a
  numeric sensor, so a sensor only ever shows its own meter.

Every entity is unavailable while `P/U/status` says `offline`.

Entity ids are suggested with `default_entity_id` (Home Assistant 2025.10 and later; the older
`object_id` option stops working in 2026.4, and older versions ignore the unknown key).
"""

from __future__ import annotations

import json
import re
from typing import Any

from controller.settings import Settings, ZoneSettings

DISCOVERY_PREFIX = "homeassistant"
BIRTH_TOPIC = "homeassistant/status"
BIRTH_PAYLOAD = "online"

ORIGIN_NAME = "streetlight"
MANUFACTURER = "streetlight project"
MODEL = "streetlight edge controller"

# Home Assistant's template light: `brightness` is 0-255 and is only defined when the action
# gives one. The unit takes integer levels 0-100, so brightness is scaled and rounded, and any
# brightness above 0 gives at least level 1 (level 0 would switch the zone off).
LIGHT_ON_TEMPLATE = (
    "{%- if brightness is defined -%}"
    "{%- set b = brightness | int -%}"
    '{"level": {{ 0 if b <= 0 else [(b * 100 / 255) | round | int, 1] | max }} }'
    "{%- else -%}"
    '{"on": true}'
    "{%- endif -%}"
)
LIGHT_OFF_TEMPLATE = '{"on": false}'
LIGHT_STATE_TEMPLATE = "{{ 'on' if value_json.on else 'off' }}"
# level 0-100 back to brightness 0-255; Home Assistant keeps the last brightness on a 0.
LIGHT_BRIGHTNESS_TEMPLATE = "{{ (value_json.level | int * 255 / 100) | round | int }}"
LIGHT_ATTRIBUTES_TEMPLATE = (
    "{{ {'source': value_json.source, 'override_until': value_json.override_until, "
    "'command_id': value_json.command_id} | tojson }}"
)
BACK_TO_SCHEDULE = '{"mode": "auto"}'


# (field in the meter payload, name, device_class, state_class, unit, diagnostic)
_METER_QUANTITIES: tuple[tuple[str, str, str, str, str | None, bool], ...] = (
    ("power", "power", "power", "measurement", "W", False),
    ("energy_kwh", "energy", "energy", "total_increasing", "kWh", False),
    ("voltage", "voltage", "voltage", "measurement", "V", True),
    ("current", "current", "current", "measurement", "A", True),
    ("power_factor", "power factor", "power_factor", "measurement", None, True),
    ("frequency", "frequency", "frequency", "measurement", "Hz", True),
)


def discovery_messages(settings: Settings, version: str) -> list[tuple[str, str]]:
    """(topic, JSON payload) pairs to publish retained, QoS 1; empty when discovery is off.

    `version` is the controller's software version, shown on the Home Assistant device.
    """
    return [
        (topic, json.dumps(config, ensure_ascii=False, sort_keys=True, separators=(",", ":")))
        for topic, config in _configs(settings, version)
    ]


def discovery_topics(settings: Settings) -> set[str]:
    """The config topics this unit's entities use; empty when discovery is off."""
    return {topic for topic, _ in _configs(settings, "")}


def removal_messages(old: Settings, new: Settings) -> list[tuple[str, str]]:
    """Empty retained payloads that make Home Assistant forget what `old` had and `new` has not.

    Covers zones and meters removed on a config reload, a changed unit id, and discovery
    switched off (then every entity of `old` is removed). Publish retained, QoS 1.
    """
    gone = discovery_topics(old) - discovery_topics(new)
    return [(topic, "") for topic in sorted(gone)]


def _configs(settings: Settings, version: str) -> list[tuple[str, dict[str, Any]]]:
    if not settings.mqtt.homeassistant_discovery:
        return []
    common = _common(settings, version)
    configs: list[tuple[str, dict[str, Any]]] = []
    for zone in settings.zones:
        configs.append(_light(settings, zone, common))
        configs.append(_button(settings, zone, common))
    for meter_id in settings.meters:
        for quantity in _METER_QUANTITIES:
            configs.append(_meter_sensor(settings, meter_id, quantity, common))
    return configs


def _node(settings: Settings) -> str:
    return f"streetlight_{settings.unit.id}"


def _topic(settings: Settings, component: str, object_id: str) -> str:
    return f"{DISCOVERY_PREFIX}/{component}/{_node(settings)}/{object_id}/config"


def _base(settings: Settings) -> str:
    return f"{settings.mqtt.topic_prefix}/{settings.unit.id}"


def _entity_id(component: str, *parts: str) -> str:
    """A valid Home Assistant entity id: lower case, digits and single inner underscores."""
    slug = re.sub(r"[^a-z0-9]+", "_", "_".join(parts).lower()).strip("_")
    return f"{component}.{slug}"


def _common(settings: Settings, version: str) -> dict[str, Any]:
    unit = settings.unit
    return {
        "availability_topic": f"{_base(settings)}/status",
        "payload_available": "online",
        "payload_not_available": "offline",
        "device": {
            "identifiers": [_node(settings)],
            "name": f"Streetlight {unit.id}",
            "manufacturer": MANUFACTURER,
            "model": MODEL,
            "sw_version": version,
            "suggested_area": unit.site,
        },
        "origin": {"name": ORIGIN_NAME, "sw_version": version},
    }


def _light(
    settings: Settings, zone: ZoneSettings, common: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    zone_base = f"{_base(settings)}/zone/{zone.id}"
    unique_id = f"{_node(settings)}_{zone.id}"
    return _topic(settings, "light", zone.id), {
        **common,
        "name": zone.label,
        "unique_id": unique_id,
        "default_entity_id": _entity_id("light", unique_id),
        "schema": "template",
        "state_topic": f"{zone_base}/state",
        "command_topic": f"{zone_base}/set",
        "command_on_template": LIGHT_ON_TEMPLATE,
        "command_off_template": LIGHT_OFF_TEMPLATE,
        "state_template": LIGHT_STATE_TEMPLATE,
        "brightness_template": LIGHT_BRIGHTNESS_TEMPLATE,
        "json_attributes_topic": f"{zone_base}/state",
        "json_attributes_template": LIGHT_ATTRIBUTES_TEMPLATE,
        "qos": 1,
        "retain": False,
        "icon": "mdi:outdoor-lamp",
    }


def _button(
    settings: Settings, zone: ZoneSettings, common: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    unique_id = f"{_node(settings)}_{zone.id}_auto"
    return _topic(settings, "button", f"{zone.id}_auto"), {
        **common,
        "name": f"{zone.label} back to schedule",
        "unique_id": unique_id,
        "default_entity_id": _entity_id("button", unique_id),
        "command_topic": f"{_base(settings)}/zone/{zone.id}/set",
        "payload_press": BACK_TO_SCHEDULE,
        "qos": 1,
        "retain": False,
        "icon": "mdi:calendar-clock",
    }


def _meter_sensor(
    settings: Settings,
    meter_id: str,
    quantity: tuple[str, str, str, str, str | None, bool],
    common: dict[str, Any],
) -> tuple[str, dict[str, Any]]:
    field, name, device_class, state_class, unit, diagnostic = quantity
    key = device_class  # one sensor per device class and meter
    unique_id = f"{_node(settings)}_meter_{meter_id}_{key}"
    config: dict[str, Any] = {
        **common,
        "name": f"Meter {meter_id} {name}",
        "unique_id": unique_id,
        "default_entity_id": _entity_id("sensor", unique_id),
        "state_topic": f"{_base(settings)}/meter",
        # Another meter's reading renders "", which a numeric sensor ignores.
        "value_template": (
            f"{{% if value_json.meter == '{meter_id}' %}}{{{{ value_json.{field} }}}}{{% endif %}}"
        ),
        "device_class": device_class,
        "state_class": state_class,
    }
    if unit is not None:
        config["unit_of_measurement"] = unit
    if diagnostic:
        config["entity_category"] = "diagnostic"
    return _topic(settings, "sensor", f"{meter_id}_{key}"), config
