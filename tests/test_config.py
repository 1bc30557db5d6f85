"""The config file and environment variables: every mistake is caught and explained."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from controller.cli import main
from controller.config_load import load_settings, locate_config
from controller.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parents[1] / "deploy" / "examples"

VALID = """
data_dir = "data"

[unit]
id = "skn-001"
site = "Sakon Nakhon test cabinet"
latitude = 17.155
longitude = 104.147
timezone = "Asia/Bangkok"

[profiles.residential]
steps = [{ at = "on", level = 100 }, { at = "22:00", level = 50, fade_s = 600 }]

[[zones]]
id = "soi-3"
groups = ["main-road"]
profile = "residential"
rated_w = 440
outputs = [{ type = "gpio_relay", pin = 17 }]

[buses.rs485]
type = "rtu"
port = "/dev/ttyUSB0"

[meters.feed]
type = "modbus"
bus = "rs485"
device_id = 10
device = "sdm120"
zones = ["soi-3"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(textwrap.dedent(text))
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    return [str(p) for p in caught.value.problems]


@pytest.fixture(autouse=True)
def _no_streetlight_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start without STREETLIGHT_* variables from the developer's shell."""
    import os

    for name in list(os.environ):
        if name.upper().startswith("STREETLIGHT_"):
            monkeypatch.delenv(name)


def test_valid_config_loads_with_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, VALID))
    assert settings.unit.id == "skn-001"
    assert settings.mqtt.topic_prefix == "streetlight"
    assert settings.mqtt.max_commands_per_s == 20
    assert settings.energy.interval == 900
    assert settings.overrides.default_duration == 14400
    assert settings.zones[0].baseline_power_w == 440  # defaults to rated_w
    assert settings.data_dir == tmp_path / "data"  # relative to the config file, not the cwd


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.name)
def test_examples_are_valid(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--config", str(example)]) == 0
    assert "valid" in capsys.readouterr().out


def test_the_three_examples_exist() -> None:
    assert {p.name for p in EXAMPLES.glob("*.toml")} >= {
        "sim.toml",
        "pi-gpio.toml",
        "pi-modbus.toml",
    }


# Each broken file: (what to change in VALID, the key path reported, words the message must hold)
BROKEN = {
    "unknown top-level key": ("zone = 3\n" + VALID, "zone:", "not a known key"),
    "unknown key in a section, with a suggestion": (
        VALID.replace('site = "Sakon', 'stie = "Sakon'),
        "unit.stie",
        "did you mean 'site'",
    ),
    "unknown key in a zone": (
        VALID.replace("rated_w = 440", "rated_w = 440\ndimm = 20"),
        "zones[0].dimm",
        "not a known key",
    ),
    "unknown key in an output": (
        VALID.replace("pin = 17 }", "pin = 17, active_hi = false }"),
        "zones[0].outputs[0].active_hi",
        "did you mean 'active_high'",
    ),
    "unknown key in a profile step": (
        VALID.replace("level = 100 }", "levle = 100 }"),
        "profiles.residential.steps[0].levle",
        "not a known key",
    ),
    "invalid zone id": (
        VALID.replace('id = "soi-3"', 'id = "Soi 3"'),
        "zones[0].id",
        "not a valid id",
    ),
    "invalid unit id": (
        VALID.replace('id = "skn-001"', 'id = "-skn"'),
        "unit.id",
        "not a valid id",
    ),
    "duplicate zone ids": (
        VALID + '\n[[zones]]\nid = "soi-3"\nprofile = "residential"\nrated_w = 1\n'
        'outputs = [{ type = "sim" }]\n',
        "zones[1].id",
        "already used by zones[0]",
    ),
    "zone naming a missing profile": (
        VALID.replace('profile = "residential"', 'profile = "residental"'),
        "zones[0].profile",
        "no profile named 'residental'",
    ),
    "output naming a missing bus": (
        VALID.replace(
            '{ type = "gpio_relay", pin = 17 }',
            '{ type = "modbus_relay", bus = "rs458", device_id = 1 }',
        ),
        "zones[0].outputs[0].bus",
        "no bus named 'rs458'",
    ),
    "meter naming a missing bus": (
        VALID.replace('bus = "rs485"', 'bus = "rs-485"'),
        "meters.feed.bus",
        "no bus named 'rs-485'",
    ),
    "meter naming a missing zone": (
        VALID.replace('zones = ["soi-3"]', 'zones = ["soi-4"]'),
        "meters.feed.zones[0]",
        "no zone with id 'soi-4'",
    ),
    "gpio pin used twice": (
        VALID.replace("pin = 17 }]", 'pin = 17 }, { type = "gpio_pwm", pin = 17 }]'),
        "zones[0].outputs[1].pin",
        "GPIO 17 is already used",
    ),
    "gpio pin out of range": (
        VALID.replace("pin = 17", "pin = 40"),
        "zones[0].outputs[0].pin",
        "GPIO 40 is not a usable pin",
    ),
    "gpio pin reserved": (
        VALID.replace("pin = 17", "pin = 0"),
        "zones[0].outputs[0].pin",
        "reserved for the HAT ID EEPROM",
    ),
    "latitude outside 90": (
        VALID.replace("latitude = 17.155", "latitude = 117.155"),
        "unit.latitude",
        "less than or equal to 90",
    ),
    "longitude outside 180": (
        VALID.replace("longitude = 104.147", "longitude = -204.1"),
        "unit.longitude",
        "greater than or equal to -180",
    ),
    "unknown time zone": (
        VALID.replace("Asia/Bangkok", "Asia/Bangkok7"),
        "unit.timezone",
        "unknown time zone 'Asia/Bangkok7'",
    ),
    "missing required key": (
        VALID.replace('site = "Sakon Nakhon test cabinet"\n', ""),
        "unit.site",
        "required but missing",
    ),
    "step level above 100": (
        VALID.replace("level = 50", "level = 150"),
        "profiles.residential.steps[1].level",
        "a step's level is 1 to 100, got 150",
    ),
    "step level 0 names the alternatives": (
        VALID.replace("level = 50", "level = 0"),
        "profiles.residential.steps[1].level",
        "end the night earlier with off_offset_min",
    ),
    "failsafe level above 100": (
        VALID.replace("rated_w = 440", "rated_w = 440\nfailsafe_level = 101"),
        "zones[0].failsafe_level",
        "less than or equal to 100",
    ),
    "bad anchor": (
        VALID.replace('"22:00"', '"25:00"'),
        "profiles.residential.steps[1].at",
        "from 00:00 to 23:59",
    ),
    "unknown output type": (
        VALID.replace('type = "gpio_relay"', 'type = "gpio_relais"'),
        "zones[0].outputs[0]",
        "'gpio_relais' is not a known kind",
    ),
    "wrong type of value": (
        VALID.replace("rated_w = 440", 'rated_w = "lots"'),
        "zones[0].rated_w",
        "valid number",
    ),
    "tls files without tls": (
        VALID + '\n[mqtt]\ntls_ca_file = "ca.crt"\n',
        "mqtt",
        "set mqtt.tls = true",
    ),
    "password file without username": (
        VALID + '\n[mqtt]\npassword_file = "pw"\n',
        "mqtt",
        "set mqtt.username",
    ),
    "energy interval not aligned": (
        VALID + "\n[energy]\ninterval = 700\n",
        "energy.interval",
        "900",
    ),
    "override duration too short": (
        VALID + "\n[overrides]\ndefault_duration = 5\n",
        "overrides.default_duration",
        "greater than or equal to 60",
    ),
    "no zones": (
        "zones = []\n" + VALID.split("[[zones]]", maxsplit=1)[0],
        "zones",
        "at least one zone",
    ),
    "two meters on one zone": (
        VALID + '\n[meters.second]\ntype = "sim"\nzones = ["soi-3"]\n',
        "meters.second.zones[0]",
        "already measured by meter 'feed'",
    ),
    "two devices at one modbus address": (
        VALID.replace(
            '{ type = "gpio_relay", pin = 17 }',
            '{ type = "modbus_relay", bus = "rs485", device_id = 10 }',
        ),
        "meters.feed.device_id",
        "already a different device at zones[0].outputs[0]",
    ),
    "bad topic prefix": (
        VALID + '\n[mqtt]\ntopic_prefix = "city/#"\n',
        "mqtt.topic_prefix",
        "not a usable topic prefix",
    ),
    "zone listed twice under one meter": (
        VALID.replace('zones = ["soi-3"]', 'zones = ["soi-3", "soi-3"]'),
        "meters.feed.zones[1]",
        "listed twice",
    ),
    "two meters at one address": (
        VALID + '\n[meters.other]\ntype = "modbus"\nbus = "rs485"\ndevice_id = 10\n'
        'device = "sdm120"\nzones = []\n',
        "meters.other.device_id",
        "already a different device",
    ),
    "broadcast address on rs-485": (
        VALID.replace("device_id = 10", "device_id = 0"),
        "meters.feed.device_id",
        "cannot be used on an RS-485",
    ),
    "curve table missing": (
        VALID.replace(
            '{ type = "gpio_relay", pin = 17 }', '{ type = "gpio_pwm", pin = 18, curve = "table" }'
        ),
        "zones[0].outputs[0]",
        "needs curve_table",
    ),
    "curve table going down": (
        VALID.replace(
            '{ type = "gpio_relay", pin = 17 }',
            '{ type = "gpio_pwm", pin = 18, curve = "table", '
            "curve_table = [[10, 0.5], [50, 0.2]] }",
        ),
        "zones[0].outputs[0]",
        "must go up",
    ),
    "missing unit table": (
        VALID.split("[unit]", maxsplit=1)[0] + VALID.split("[profiles.residential]")[1],
        "unit",
        "add a [unit] table",
    ),
    "empty site": (
        VALID.replace('site = "Sakon Nakhon test cabinet"', 'site = ""'),
        "unit.site",
        "must not be empty",
    ),
    "offset and elevation both set": (
        VALID.replace(
            "[profiles.residential]",
            "[profiles.residential]\non_offset_min = 5\non_elevation_deg = -3",
        ),
        "profiles.residential",
        "keep one",
    ),
}


@pytest.mark.parametrize("case", BROKEN, ids=list(BROKEN))
def test_broken_config_is_reported_with_path_and_fix(tmp_path: Path, case: str) -> None:
    text, path, words = BROKEN[case]
    problems = problems_of(write(tmp_path, text))
    matching = [p for p in problems if p.startswith(path) and words in p]
    assert matching, f"expected {path!r} with {words!r} in:\n" + "\n".join(problems)


def test_check_lists_five_distinct_mistakes_in_one_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        VALID.replace("latitude = 17.155", "latitude = 95")  # 1. out of range
        .replace("Asia/Bangkok", "Asia/Bankok")  # 2. unknown time zone
        .replace('profile = "residential"', 'profile = "residental"')  # 3. missing profile
        .replace("rated_w = 440", "rated_w = 440\ndim = 5")  # 4. unknown key
        .replace('bus = "rs485"', 'bus = "rs-485"')  # 5. missing bus
    )
    config = write(tmp_path, text)
    assert main(["check", "--config", str(config)]) == 2
    out = capsys.readouterr().out
    assert "5 problems" in out
    for fragment in (
        "unit.latitude",
        "unit.timezone: unknown time zone 'Asia/Bankok'",
        "zones[0].profile (zone 'soi-3'): no profile named 'residental'",
        "zones[0].dim (zone 'soi-3'): is not a known key",
        "meters.feed.bus: no bus named 'rs-485'",
    ):
        assert fragment in out
    assert out.count("fix:") >= 4  # each problem says how to fix it


def test_missing_config_file_says_how_to_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "--config", str(tmp_path / "nope.toml")]) == 2
    out = capsys.readouterr().out
    assert "does not exist" in out and "--config" in out


def test_toml_syntax_error_names_its_line(tmp_path: Path) -> None:
    text = VALID.replace('site = "Sakon Nakhon test cabinet"', "site = Sakon Nakhon")
    (problem,) = problems_of(write(tmp_path, text))
    line = textwrap.dedent(text).splitlines().index("site = Sakon Nakhon") + 1
    assert "TOML syntax error" in problem and f"line {line}" in problem


def test_environment_overrides_one_key_and_keeps_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREETLIGHT_MQTT__PORT", "1884")
    monkeypatch.setenv("STREETLIGHT_UNIT__LATITUDE", "18.79")
    settings = load_settings(write(tmp_path, VALID + '\n[mqtt]\nhost = "broker.city"\n'))
    assert settings.mqtt.port == 1884
    assert settings.mqtt.host == "broker.city"
    assert settings.unit.latitude == 18.79
    assert settings.unit.id == "skn-001"


def test_bad_environment_value_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREETLIGHT_MQTT__PORT", "99999")
    (problem,) = problems_of(write(tmp_path, VALID))
    assert problem.startswith("mqtt.port") and "STREETLIGHT_MQTT__PORT" in problem


def test_unknown_nested_environment_variable_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREETLIGHT_MQTT__PROT", "1884")
    (problem,) = problems_of(write(tmp_path, VALID))
    assert problem.startswith("mqtt.prot") and "did you mean 'port'" in problem


def test_config_file_lookup_order(tmp_path: Path) -> None:
    assert locate_config("given.toml", {"STREETLIGHT_CONFIG": "env.toml"}) == Path("given.toml")
    assert locate_config(None, {"STREETLIGHT_CONFIG": "env.toml"}) == Path("env.toml")
    assert locate_config(None, {}) == Path("/etc/streetlight/config.toml")


def test_config_from_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREETLIGHT_CONFIG", str(write(tmp_path, VALID)))
    assert load_settings().unit.id == "skn-001"


def test_shared_identical_photocell_is_allowed(tmp_path: Path) -> None:
    photocell = '\nlight_input = { type = "gpio_photocell", pin = 27 }\n'
    second = (
        '\n[[zones]]\nid = "soi-4"\nprofile = "residential"\nrated_w = 1\n'
        'outputs = [{ type = "gpio_relay", pin = 22 }]'
    )
    text = VALID.replace("rated_w = 440", "rated_w = 440" + photocell) + second + photocell
    zones = load_settings(write(tmp_path, text)).zones
    assert zones[0].light_input == zones[1].light_input is not None


def test_values_from_the_environment_are_typed_like_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREETLIGHT_ENERGY__INTERVAL", "600")
    monkeypatch.setenv("STREETLIGHT_BUSES__RS485__BAUDRATE", "2400")
    settings = load_settings(write(tmp_path, VALID + "\n[mqtt]\nprotocol = 5\n"))
    assert settings.energy.interval == 600
    assert settings.buses["rs485"].baudrate == 2400  # type: ignore[union-attr]
    assert settings.mqtt.protocol == "5"


def test_environment_variable_naming_no_section_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREETLIGHT_MQT__PORT", "1884")
    (problem,) = problems_of(write(tmp_path, VALID))
    assert (
        "STREETLIGHT_MQT__PORT names no config section" in problem and "STREETLIGHT_MQTT" in problem
    )


def test_shared_photocell_equal_with_defaults_is_allowed(tmp_path: Path) -> None:
    first = '\nlight_input = { type = "gpio_photocell", pin = 27, dark_when = "high" }\n'
    second = (
        '\n[[zones]]\nid = "soi-4"\nprofile = "residential"\nrated_w = 1\n'
        'outputs = [{ type = "gpio_relay", pin = 22 }]\n'
        'light_input = { type = "gpio_photocell", pin = 27 }\n'
    )
    load_settings(write(tmp_path, VALID.replace("rated_w = 440", "rated_w = 440" + first) + second))


def test_values_are_shown_as_toml_spells_them(tmp_path: Path) -> None:
    problems = problems_of(
        write(tmp_path, VALID.replace('id = "soi-3"', 'id = "soi-3"\nname = false'))
    )
    assert any("zones[0].name" in p and "(got false)" in p for p in problems)
