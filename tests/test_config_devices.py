"""A config's Modbus devices must name a device profile of the right kind, with that channel."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from controller.config_load import load_settings
from controller.errors import ConfigError
from controller.settings import ModbusMeter
from drivers.modbus.profiles import PACKAGE_PROFILES

EXAMPLES = Path(__file__).resolve().parents[1] / "deploy" / "examples"


def modbus_config(tmp_path: Path, old: str = "", new: str = "") -> Path:
    text = (EXAMPLES / "pi-modbus.toml").read_text()
    if old:
        assert old in text
        text = text.replace(old, new, 1)
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    return [str(p) for p in caught.value.problems]


def test_an_unknown_device_lists_the_known_profiles_and_where_to_add_one(tmp_path: Path) -> None:
    path = modbus_config(tmp_path, 'device = "sdm120"', 'device = "sdm12"')
    (problem,) = problems_of(path)
    assert problem.startswith("meters.feed.device:")
    assert 'no device profile "sdm12"' in problem
    assert "sdm120" in problem and "pzem-016" in problem
    assert "docs/modbus-profiles.md" in problem


def test_a_meter_cannot_be_a_relay_module(tmp_path: Path) -> None:
    path = modbus_config(tmp_path, 'device = "sdm120"', 'device = "generic-relay"')
    (problem,) = problems_of(path)
    assert "meters.feed.device" in problem
    assert "is the profile of a relay" in problem and "needs a meter" in problem


def test_a_channel_the_module_does_not_have_is_refused(tmp_path: Path) -> None:
    path = modbus_config(
        tmp_path,
        "device_id = 2, channel = 2, min_level = 15",
        "device_id = 2, channel = 40, min_level = 15",
    )
    (problem,) = problems_of(path)
    assert problem.startswith("zones[2].outputs[1].channel (zone 'kim-yong-market'):")
    assert "not 40" in problem


def test_a_site_profile_beside_the_config_is_found(tmp_path: Path) -> None:
    devices = tmp_path / "devices"
    devices.mkdir()
    shutil.copy(PACKAGE_PROFILES / "sdm120.toml", devices / "cabinet-meter.toml")
    path = modbus_config(tmp_path, 'device = "sdm120"', 'device = "cabinet-meter"')
    meter = load_settings(path).meters["feed"]
    assert isinstance(meter, ModbusMeter) and meter.device == "cabinet-meter"


def test_a_broken_site_profile_is_reported_against_the_config(tmp_path: Path) -> None:
    devices = tmp_path / "devices"
    devices.mkdir()
    text = (
        (PACKAGE_PROFILES / "sdm120.toml")
        .read_text()
        .replace('type = "float32"', 'type = "f32"', 1)
    )
    (devices / "cabinet-meter.toml").write_text(text)
    path = modbus_config(tmp_path, 'device = "sdm120"', 'device = "cabinet-meter"')
    (problem,) = problems_of(path)
    assert "meters.feed.device" in problem
    assert "cabinet-meter.toml" in problem and "f32" in problem


def test_configs_without_modbus_do_not_load_the_profiles(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys; from controller.config_load import load_settings; "
        f"load_settings({str(EXAMPLES / 'sim.toml')!r}, data_dir={str(tmp_path)!r}); "
        "print('drivers.modbus.profiles' in sys.modules, 'pymodbus' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]


def test_a_relay_module_named_by_default_and_by_name_is_one_device(tmp_path: Path) -> None:
    path = modbus_config(
        tmp_path,
        '{ type = "modbus_relay", bus = "rs485", device_id = 1, channel = 1 }',
        '{ type = "modbus_relay", bus = "rs485", device_id = 1, channel = 1, '
        'device = "generic-relay" }',
    )
    load_settings(path)  # no "already a different device"
