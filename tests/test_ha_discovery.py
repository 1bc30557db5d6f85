"""Home Assistant discovery payloads: topics, entities, and commands that the unit accepts."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from controller.config_load import load_settings
from controller.ha_discovery import (
    BIRTH_PAYLOAD,
    BIRTH_TOPIC,
    DISCOVERY_PREFIX,
    discovery_messages,
    discovery_topics,
    removal_messages,
)
from controller.settings import Settings

SIM = Path(__file__).resolve().parents[1] / "deploy" / "examples" / "sim.toml"
VERSION = "0.1.0"
NODE = "streetlight_skn-001"
# Home Assistant's rule for an entity id: domain.object, lower case, digits, single inner "_"
ZONES = ("soi-3", "market", "school-path")
ENTITY_ID = re.compile(r"^(?!.+__)(?!_)[\da-z_]+(?<!_)\.(?!_)[\da-z_]+(?<!_)$")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The example unit (zones soi-3, market, school-path; meter cabinet), discovery on."""
    return load_settings(SIM, data_dir=tmp_path, mqtt={"homeassistant_discovery": True})


def configs(settings: Settings) -> dict[str, dict[str, Any]]:
    messages = discovery_messages(settings, VERSION)
    parsed = {topic: json.loads(payload) for topic, payload in messages}
    assert len(parsed) == len(messages), "a topic is published twice"
    return parsed


def config(settings: Settings, component: str, object_id: str) -> dict[str, Any]:
    return configs(settings)[f"homeassistant/{component}/{NODE}/{object_id}/config"]


def with_meters(settings: Settings, *meter_ids: str) -> Settings:
    (meter,) = settings.meters.values()
    return settings.model_copy(update={"meters": dict.fromkeys(meter_ids, meter)})


def is_contract_command(payload: str) -> bool:
    """One of the commands docs/mqtt.md accepts without an id or a duration."""
    command = json.loads(payload)
    if not isinstance(command, dict) or len(command) != 1:
        return False
    ((key, value),) = command.items()
    if key == "on":
        return isinstance(value, bool)
    if key == "level":
        return type(value) is int and 0 <= value <= 100
    return key == "mode" and bool(value == "auto")


def test_constants_are_home_assistants_defaults() -> None:
    assert DISCOVERY_PREFIX == "homeassistant"
    assert (BIRTH_TOPIC, BIRTH_PAYLOAD) == ("homeassistant/status", "online")


def test_nothing_is_published_when_discovery_is_off(tmp_path: Path) -> None:
    off = load_settings(SIM, data_dir=tmp_path)
    assert not off.mqtt.homeassistant_discovery
    assert discovery_messages(off, VERSION) == []
    assert discovery_topics(off) == set()


def test_one_light_and_one_button_per_zone_and_six_sensors_per_meter(settings: Settings) -> None:
    expected = {f"homeassistant/light/{NODE}/{zone}/config" for zone in ZONES}
    expected |= {f"homeassistant/button/{NODE}/{zone}_auto/config" for zone in ZONES}
    expected |= {
        f"homeassistant/sensor/{NODE}/cabinet_{key}/config"
        for key in ("power", "energy", "voltage", "current", "power_factor", "frequency")
    }
    assert set(configs(settings)) == expected
    assert discovery_topics(settings) == expected


def test_every_entity_has_the_unit_availability_device_and_origin(settings: Settings) -> None:
    for payload in configs(settings).values():
        assert payload["availability_topic"] == "streetlight/skn-001/status"
        assert payload["payload_available"] == "online"
        assert payload["payload_not_available"] == "offline"
        assert payload["device"] == {
            "identifiers": [NODE],
            "name": "Streetlight skn-001",
            "manufacturer": "streetlight project",
            "model": "streetlight edge controller",
            "sw_version": VERSION,
            "suggested_area": "Sakon Nakhon, That Choeng Chum cabinet 1",
        }
        assert payload["origin"] == {"name": "streetlight", "sw_version": VERSION}


def test_unique_ids_are_unique_and_entity_ids_valid(settings: Settings) -> None:
    two_meters = with_meters(settings, "cabinet", "feed-2")
    by_topic = configs(two_meters)
    unique_ids = [payload["unique_id"] for payload in by_topic.values()]
    assert len(unique_ids) == len(set(unique_ids)) == 3 * 2 + 2 * 6
    for topic, payload in by_topic.items():
        component = topic.split("/")[1]
        entity_id = payload["default_entity_id"]
        assert ENTITY_ID.match(entity_id), entity_id
        assert entity_id.startswith(f"{component}.streetlight_skn_001_")
        assert "object_id" not in payload  # deprecated in HA 2025.10, ignored from 2026.4
    assert config(settings, "light", "soi-3")["unique_id"] == "streetlight_skn-001_soi-3"
    assert (
        config(settings, "light", "soi-3")["default_entity_id"] == "light.streetlight_skn_001_soi_3"
    )


def test_a_zone_is_a_dimmable_template_light_on_its_own_topics(settings: Settings) -> None:
    light = config(settings, "light", "soi-3")
    assert light["schema"] == "template"
    assert light["name"] == "Soi 3 (residential)"
    assert light["state_topic"] == "streetlight/skn-001/zone/soi-3/state"
    assert light["command_topic"] == "streetlight/skn-001/zone/soi-3/set"
    assert light["json_attributes_topic"] == light["state_topic"]
    assert (light["qos"], light["retain"]) == (1, False)
    assert light["state_template"] == "{{ 'on' if value_json.on else 'off' }}"
    # level 0-100 from the State to Home Assistant's brightness 0-255, as an integer
    assert (
        light["brightness_template"] == "{{ (value_json.level | int * 255 / 100) | round | int }}"
    )
    assert "value_json.source" in light["json_attributes_template"]
    assert "value_json.override_until" in light["json_attributes_template"]


def test_the_light_sends_only_the_contracts_commands(settings: Settings) -> None:
    light = config(settings, "light", "market")
    off = light["command_off_template"]
    assert "{{" not in off and "{%" not in off
    assert is_contract_command(off) and json.loads(off) == {"on": False}

    on = light["command_on_template"]
    # without a brightness: the zone's on-level; with one: a level, nothing else
    assert re.search(
        r"if brightness is defined.*\{\"level\": \{\{.*\}\}.*else.*\{\"on\": true\}", on
    )
    assert set(re.findall(r'"(\w+)":', on)) == {"level", "on"}
    assert "duration" not in on and "id" not in re.findall(r'"(\w+)"', on)
    # 0-255 scaled to 0-100, rounded to an integer, at least 1 for any brightness above 0
    assert "b * 100 / 255" in on
    assert "| round | int, 1] | max" in on
    assert "0 if b <= 0" in on
    # the template's two outputs, with the level expression replaced by a number it yields
    level = re.search(r'\{"level": \{\{.*?\}\} ?\}', on)
    assert level is not None
    for rendered in ("1", "40", "100"):
        assert is_contract_command(re.sub(r"\{\{.*?\}\}", rendered, level.group(0)))
    assert '{"on": true}' in on and is_contract_command('{"on": true}')


def test_a_zone_has_a_back_to_schedule_button(settings: Settings) -> None:
    button = config(settings, "button", "school-path_auto")
    assert button["name"] == "Footpath behind the school back to schedule"
    assert button["command_topic"] == "streetlight/skn-001/zone/school-path/set"
    assert button["payload_press"] == '{"mode": "auto"}'
    assert is_contract_command(button["payload_press"])
    assert (button["qos"], button["retain"]) == (1, False)


def test_meter_power_and_energy_sensors_suit_the_energy_dashboard(settings: Settings) -> None:
    power = config(settings, "sensor", "cabinet_power")
    energy = config(settings, "sensor", "cabinet_energy")
    assert power["state_topic"] == energy["state_topic"] == "streetlight/skn-001/meter"
    assert (power["device_class"], power["state_class"], power["unit_of_measurement"]) == (
        "power",
        "measurement",
        "W",
    )
    assert (energy["device_class"], energy["state_class"], energy["unit_of_measurement"]) == (
        "energy",
        "total_increasing",
        "kWh",
    )
    assert "entity_category" not in power and "entity_category" not in energy
    assert energy["value_template"] == (
        "{% if value_json.meter == 'cabinet' %}{{ value_json.energy_kwh }}{% endif %}"
    )
    assert power["value_template"] == (
        "{% if value_json.meter == 'cabinet' %}{{ value_json.power }}{% endif %}"
    )


def test_other_meter_readings_are_diagnostic_sensors(settings: Settings) -> None:
    expected = {
        "voltage": ("voltage", "V"),
        "current": ("current", "A"),
        "power_factor": ("power_factor", None),
        "frequency": ("frequency", "Hz"),
    }
    for key, (field, unit) in expected.items():
        sensor = config(settings, "sensor", f"cabinet_{key}")
        assert sensor["device_class"] == key
        assert sensor["state_class"] == "measurement"
        assert sensor.get("unit_of_measurement") == unit
        assert sensor["entity_category"] == "diagnostic"
        assert f"{{{{ value_json.{field} }}}}" in sensor["value_template"]


def test_each_sensor_picks_only_its_own_meter_from_the_shared_topic(settings: Settings) -> None:
    two = with_meters(settings, "cabinet", "feed-2")
    sensors = {t: p for t, p in configs(two).items() if t.startswith("homeassistant/sensor/")}
    for topic, sensor in sensors.items():
        meter = "feed-2" if "/feed-2_" in topic else "cabinet"
        other = "cabinet" if meter == "feed-2" else "feed-2"
        template = sensor["value_template"]
        assert template.startswith(f"{{% if value_json.meter == '{meter}' %}}")
        # anything else renders "": Home Assistant ignores an empty value for a numeric sensor
        assert template.endswith("{% endif %}") and "else" not in template
        assert other not in template
        assert sensor["state_topic"] == "streetlight/skn-001/meter"


def test_topic_prefix_is_used_for_state_topics_not_for_discovery(tmp_path: Path) -> None:
    north = load_settings(
        SIM,
        data_dir=tmp_path,
        mqtt={"homeassistant_discovery": True, "topic_prefix": "city/north"},
    )
    light = config(north, "light", "soi-3")
    assert light["command_topic"] == "city/north/skn-001/zone/soi-3/set"
    assert light["availability_topic"] == "city/north/skn-001/status"
    assert config(north, "sensor", "cabinet_power")["state_topic"] == "city/north/skn-001/meter"
    assert all(topic.startswith("homeassistant/") for topic in discovery_topics(north))


def test_zone_names_in_thai_are_kept_as_text(settings: Settings) -> None:
    zones = [settings.zones[0].model_copy(update={"name": "ซอย 3"}), *settings.zones[1:]]
    thai = settings.model_copy(update={"zones": zones})
    (topic, payload) = next(m for m in discovery_messages(thai, VERSION) if "/light/" in m[0])
    assert topic.endswith("/soi-3/config")
    assert "ซอย 3" in payload and json.loads(payload)["name"] == "ซอย 3"


def test_the_same_settings_give_the_same_bytes(settings: Settings) -> None:
    assert discovery_messages(settings, VERSION) == discovery_messages(settings, VERSION)


def test_removing_a_zone_and_a_meter_clears_only_their_entities(settings: Settings) -> None:
    fewer = with_meters(settings, "feed-2").model_copy(
        update={"zones": [z for z in settings.zones if z.id != "market"]}
    )
    removed = removal_messages(with_meters(settings, "cabinet", "feed-2"), fewer)
    assert all(payload == "" for _, payload in removed)
    assert {topic for topic, _ in removed} == {
        f"homeassistant/light/{NODE}/market/config",
        f"homeassistant/button/{NODE}/market_auto/config",
        *(
            f"homeassistant/sensor/{NODE}/cabinet_{key}/config"
            for key in ("power", "energy", "voltage", "current", "power_factor", "frequency")
        ),
    }


def test_nothing_to_remove_when_nothing_went_away(settings: Settings) -> None:
    assert removal_messages(settings, settings) == []
    more = with_meters(settings, "cabinet", "feed-2")
    assert removal_messages(settings, more) == []


def test_switching_discovery_off_or_renaming_the_unit_removes_everything(
    settings: Settings,
) -> None:
    off = settings.model_copy(
        update={"mqtt": settings.mqtt.model_copy(update={"homeassistant_discovery": False})}
    )
    assert {t for t, p in removal_messages(settings, off) if p == ""} == discovery_topics(settings)
    renamed = settings.model_copy(
        update={"unit": settings.unit.model_copy(update={"id": "skn-002"})}
    )
    assert {t for t, _ in removal_messages(settings, renamed)} == discovery_topics(settings)
    assert removal_messages(off, settings) == []
