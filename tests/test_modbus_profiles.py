"""Modbus device profiles: the shipped files, the loader's messages, and the word codecs."""

from __future__ import annotations

import math
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import HardwareConfigError
from drivers.modbus.profiles import (
    METER_QUANTITIES,
    PACKAGE_PROFILES,
    DataType,
    ReadBlock,
    Register,
    WordOrder,
    known_profiles,
    load_profile,
    parse_profile,
)
from drivers.modbus.sim_device import encode

SHIPPED = {
    "sdm120": "meter",
    "sdm630": "meter",
    "pzem-016": "meter",
    "generic-relay": "relay",
    "generic-0-10v": "dimmer",
}

GOOD_METER = """
[device]
model = "Acme M1"
kind = "meter"
source = "Acme M1 manual, v1.0, table 3"

[registers.voltage]
function = "input"
address = 0x0000
type = "float32"
unit = "V"

[registers.current]
function = "input"
address = 0x0002
type = "float32"
unit = "A"

[registers.power]
function = "input"
address = 0x0004
type = "float32"
unit = "W"

[registers.power_factor]
function = "input"
address = 0x0006
type = "float32"

[registers.frequency]
function = "input"
address = 0x0008
type = "float32"
unit = "Hz"

[registers.energy_kwh]
function = "holding"
address = 0x0100
type = "u32"
scale = 0.001
unit = "kWh"
"""


def test_shipped_files_are_the_five_models() -> None:
    assert {p.stem for p in PACKAGE_PROFILES.glob("*.toml")} == set(SHIPPED)


@pytest.mark.parametrize(("name", "kind"), SHIPPED.items())
def test_shipped_profile_loads_and_cites_its_source(name: str, kind: str) -> None:
    profile = load_profile(name)
    assert (profile.name, profile.kind) == (name, kind)
    assert profile.origin == str(PACKAGE_PROFILES / f"{name}.toml")
    # a source names a manufacturer's document, not just a web search
    assert any(word in profile.source for word in ("protocol", "manual", "wiki"))
    if kind == "meter":
        assert set(profile.registers) == set(METER_QUANTITIES)
        assert profile.channels is None
    else:
        assert profile.registers == {}
        assert profile.channels is not None


def test_eastron_maps_match_the_datasheet_addresses() -> None:
    sdm120 = load_profile("sdm120").registers
    addresses = {q: r.address for q, r in sdm120.items()}
    assert addresses == {
        "voltage": 0x0000,
        "current": 0x0006,
        "power": 0x000C,
        "power_factor": 0x001E,
        "frequency": 0x0046,
        "energy_kwh": 0x0156,
    }
    assert all(r.type == "float32" and r.word_order == "big" for r in sdm120.values())
    sdm630 = load_profile("sdm630").registers
    assert (sdm630["voltage"].address, sdm630["voltage"].combine) == ((0, 2, 4), "mean")
    assert (sdm630["current"].address, sdm630["current"].combine) == ((6, 8, 10), "sum")
    assert [sdm630[q].address for q in ("power", "power_factor", "frequency", "energy_kwh")] == [
        0x0034,
        0x003E,
        0x0046,
        0x0156,
    ]


def test_pzem_reads_low_word_first_and_counts_wh() -> None:
    pzem = load_profile("pzem-016")
    energy = pzem.registers["energy_kwh"]
    assert (energy.address, energy.type, energy.word_order) == (5, "u32", "little")
    # 0x0001_E240 Wh = 123456 Wh, low word at the lower address
    assert energy.decode([0xE240, 0x0001]) == pytest.approx(123.456)
    assert pzem.read_plan() == (ReadBlock("input", 0, 9),)


def test_aliases_name_the_same_profile() -> None:
    assert load_profile("pzem-004t").name == "pzem-016"
    assert load_profile("waveshare-relay-8").name == "generic-relay"
    assert load_profile("waveshare-ao-8ch-b").name == "generic-0-10v"
    profiles = known_profiles()
    assert profiles["pzem-004t-v3"] is not profiles["sdm120"]
    assert profiles["pzem-004t-v3"].name == "pzem-016"


def test_the_0_10v_module_writes_millivolts_to_one_register_per_channel() -> None:
    profile = load_profile("generic-0-10v")
    assert profile.channels is not None
    assert (profile.channels.function, profile.channels.full_scale) == ("holding", 10000)
    assert [profile.channel_address(c) for c in (0, 7)] == [0, 7]
    with pytest.raises(HardwareConfigError, match=r"has channels 0 to 7, not 8"):
        profile.channel_address(8)


def test_eastron_meters_are_read_in_two_requests() -> None:
    assert load_profile("sdm120").read_plan() == (
        ReadBlock("input", 0x0000, 0x0048),
        ReadBlock("input", 0x0156, 2),
    )


def test_read_plan_keeps_to_max_read_registers() -> None:
    text = GOOD_METER.replace('source = "', 'max_read_registers = 4\nsource = "')
    plan = parse_profile(text, "acme", "acme.toml").read_plan()
    assert all(block.count <= 4 for block in plan)
    covered = {(b.function, b.address + i) for b in plan for i in range(b.count)}
    wanted = {("input", a) for a in range(10)} | {("holding", 0x100), ("holding", 0x101)}
    assert covered == wanted
    assert len(plan) == 4  # 0-3, 4-7, 8-9 and the holding pair


# --------------------------------------------------------------------------------------------
# loader messages


def test_unknown_profile_lists_the_known_ones_and_where_to_add_one(tmp_path: Path) -> None:
    with pytest.raises(HardwareConfigError) as caught:
        load_profile("sdm12", [tmp_path])
    message = str(caught.value)
    assert 'there is no device profile "sdm12"' in message
    for name in SHIPPED:
        assert name in message
    assert "pzem-016 (also pzem-004t, pzem-004t-v3)" in message
    assert f"sdm12.toml in {tmp_path}" in message
    assert "docs/modbus-profiles.md" in message


def test_a_site_directory_adds_and_replaces_profiles(tmp_path: Path) -> None:
    (tmp_path / "acme-m1.toml").write_text(GOOD_METER)
    (tmp_path / "sdm120.toml").write_text(GOOD_METER.replace("Acme M1", "SDM120 site copy"))
    profiles = known_profiles([tmp_path])
    assert profiles["acme-m1"].model == "Acme M1"
    assert profiles["sdm120"].model == "SDM120 site copy"
    assert profiles["sdm120"].origin == str(tmp_path / "sdm120.toml")
    assert profiles["sdm630"].origin == str(PACKAGE_PROFILES / "sdm630.toml")
    assert load_profile("acme-m1", [tmp_path]).registers["energy_kwh"].scale == 0.001
    assert load_profile("sdm120").model == "Eastron SDM120-Modbus"  # without the site dir


def test_a_site_alias_does_not_take_a_shipped_name(tmp_path: Path) -> None:
    text = GOOD_METER.replace('kind = "meter"', 'kind = "meter"\naliases = ["sdm630", "m1"]')
    (tmp_path / "acme-m1.toml").write_text(text)
    assert load_profile("sdm630", [tmp_path]).model == "Eastron SDM630-Modbus"
    assert load_profile("m1", [tmp_path]).model == "Acme M1"


def test_a_broken_file_is_named_when_a_name_is_not_found(tmp_path: Path) -> None:
    (tmp_path / "broken.toml").write_text("[device\nmodel = 1")
    assert load_profile("sdm120", [tmp_path]).name == "sdm120"  # found by its file name
    with pytest.raises(HardwareConfigError, match=r"broken\.toml is not valid TOML"):
        load_profile("acme", [tmp_path])
    with pytest.raises(HardwareConfigError, match=r"broken\.toml is not valid TOML .*line 1"):
        known_profiles([tmp_path])


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'type = "u32"',
            'type = "uint32"',
            r"registers\.energy_kwh\.type is 'uint32'; use one of \"u16\", \"s16\", \"u32\"",
        ),
        (
            "address = 0x0002\n",
            "",
            r"registers\.current\.address is missing; add the 0-based address from the datasheet",
        ),
        (
            'unit = "W"',
            'unit = "W"\nadress = 4',
            r"registers\.power\.adress is not a known key here \(a typo\?\); the keys here are "
            r"address, combine, function, scale, type, unit, word_order",
        ),
        (
            'scale = 0.001\nunit = "kWh"',
            'unit = "Wh"',
            r'registers\.energy_kwh\.unit is "Wh", but the driver reports energy_kwh in "kWh": '
            r'set unit = "kWh" .*scale = 0\.001 for a counter in Wh',
        ),
        (
            "address = 0x0008",
            "address = [0x0008, 0x000A]",
            r"registers\.frequency\.combine is missing: with a list of addresses, say how to "
            r'combine them: "sum"',
        ),
        (
            '[registers.power_factor]\nfunction = "input"\naddress = 0x0006\ntype = "float32"\n',
            "",
            r"registers\.power_factor is missing: a meter profile maps exactly voltage, current, "
            r"power, power_factor, frequency, energy_kwh",
        ),
        (
            "[registers.voltage]",
            '[registers.import_kwh]\nfunction = "input"\naddress = 0x0048\ntype = "float32"\n'
            "[registers.voltage]",
            r"registers\.import_kwh is not a value the meter driver reads",
        ),
        ('kind = "meter"', 'kind = "metre"', r"device\.kind is 'metre'; use one of \"meter\""),
        ('source = "Acme M1 manual, v1.0, table 3"', "", r"device\.source is missing; add where"),
        ("address = 0x0100", "address = 0xFFFF", r"registers\.energy_kwh\.address must be an "),
        ("scale = 0.001", "scale = 0", r"registers\.energy_kwh\.scale is 0\.0; use the factor"),
        (
            'kind = "meter"',
            'kind = "meter"\nmax_read_registers = 1',
            r"device\.max_read_registers is 1, less than the 2",
        ),
    ],
)
def test_a_broken_profile_names_the_key_and_the_fix(old: str, new: str, message: str) -> None:
    assert old in GOOD_METER
    text = GOOD_METER.replace(old, new, 1)
    with pytest.raises(HardwareConfigError, match=r"device profile /site/acme\.toml: " + message):
        parse_profile(text, "acme", "/site/acme.toml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[device]\nmodel = "R"\nkind = "relay"\nsource = "s"\n[channels]\naddress = 0\n'
            "count = 4\nfull_scale = 1",
            r"channels\.full_scale is for 0-10 V modules, not relays: remove it",
        ),
        (
            '[device]\nmodel = "D"\nkind = "dimmer"\nsource = "s"\n[channels]\naddress = 0\n'
            "count = 4",
            r"channels\.full_scale is missing; add the raw value for 100 %",
        ),
        (
            '[device]\nmodel = "D"\nkind = "dimmer"\nsource = "s"\n[channels]\naddress = 0\n'
            'count = 4\nfull_scale = 4095\n[registers.voltage]\nfunction = "input"',
            r"registers is for meters, not dimmer modules: remove it",
        ),
        (
            '[device]\nmodel = "R"\nkind = "relay"\nsource = "s"\n[channels]\naddress = 65535\n'
            "count = 4",
            r"channels\.count is 4: channels from 65535 on would pass address 65535",
        ),
        ('model = "R"', r"device is missing; add a \[device\] table"),
    ],
)
def test_a_broken_module_profile_names_the_key_and_the_fix(text: str, message: str) -> None:
    with pytest.raises(HardwareConfigError, match=r"device profile x\.toml: " + message):
        parse_profile(text, "x", "x.toml")


def test_an_unreadable_file_says_so(tmp_path: Path) -> None:
    (tmp_path / "latin.toml").write_bytes(b'[device]\nmodel = "M\xe9ter"\n')
    with pytest.raises(HardwareConfigError, match=r"latin\.toml is not UTF-8 text: save it"):
        load_profile("latin", [tmp_path])


# --------------------------------------------------------------------------------------------
# words <-> values


@pytest.mark.parametrize(
    ("data_type", "order", "value", "words"),
    [
        ("float32", "big", 230.5, [0x4366, 0x8000]),
        ("float32", "little", 230.5, [0x8000, 0x4366]),
        ("u16", "big", 65535, [0xFFFF]),
        ("s16", "big", -1, [0xFFFF]),
        ("s16", "big", -32768, [0x8000]),
        ("u32", "big", 0x12345678, [0x1234, 0x5678]),
        ("u32", "little", 0x12345678, [0x5678, 0x1234]),
        ("s32", "little", -2, [0xFFFE, 0xFFFF]),
        ("s32", "big", -0x80000000, [0x8000, 0x0000]),
    ],
)
def test_known_words(data_type: DataType, order: WordOrder, value: float, words: list[int]) -> None:
    register = Register("x", "input", 0, data_type, order)
    assert register.encode(value) == words
    assert register.decode(words) == value


@pytest.mark.parametrize(("data_type", "value"), [("u16", 65536), ("u16", -1), ("s16", 40000)])
def test_a_value_that_does_not_fit_is_refused(data_type: DataType, value: float) -> None:
    with pytest.raises(ValueError, match=r"does not fit x"):
        Register("x", "input", 0, data_type).encode(value)


@given(
    data_type=st.sampled_from(["u16", "s16", "u32", "s32"]),
    order=st.sampled_from(["big", "little"]),
    scale=st.sampled_from([1.0, 0.1, 0.01, 0.001, 10.0]),
    fraction=st.floats(0, 1),
)
def test_integer_types_round_trip_to_their_resolution(
    data_type: DataType, order: WordOrder, scale: float, fraction: float
) -> None:
    low, high = {
        "u16": (0, 0xFFFF),
        "s16": (-0x8000, 0x7FFF),
        "u32": (0, 0xFFFF_FFFF),
        "s32": (-0x8000_0000, 0x7FFF_FFFF),
    }[data_type]
    value = (low + (high - low) * fraction) * scale
    register = Register("x", "input", 0, data_type, order, scale)
    words = register.encode(value)
    assert all(0 <= w <= 0xFFFF for w in words) and len(words) == register.width
    assert register.decode(words) == pytest.approx(value, abs=scale / 2 + 1e-9 * abs(value))


@given(value=st.floats(allow_nan=False, width=32), order=st.sampled_from(["big", "little"]))
def test_float32_round_trips_exactly(value: float, order: WordOrder) -> None:
    register = Register("x", "input", 0, "float32", order)
    assert register.decode(register.encode(value)) == value


def test_float32_keeps_nan_so_the_plausibility_check_sees_it() -> None:
    register = Register("x", "input", 0, "float32")
    assert math.isnan(register.decode(register.encode(math.nan)))
    assert register.decode(list(struct.unpack(">HH", struct.pack(">f", math.inf)))) == math.inf


def test_encode_splits_sums_and_repeats_means() -> None:
    tables = encode(load_profile("sdm630"), {"voltage": 230.0, "current": 3.0})
    words = tables["input"]

    def value_at(address: int) -> float:
        return float(struct.unpack(">f", struct.pack(">HH", words[address], words[address + 1]))[0])

    assert [value_at(a) for a in (0, 2, 4)] == [230.0, 230.0, 230.0]
    assert [value_at(a) for a in (6, 8, 10)] == [1.0, 1.0, 1.0]
    assert value_at(0x0156) == 0.0  # not given: 0
    with pytest.raises(ValueError, match=r"has no import_kwh; it has voltage, current"):
        encode(load_profile("sdm630"), {"import_kwh": 1.0})


# --------------------------------------------------------------------------------------------
# import rules


def test_profiles_load_without_pymodbus_and_drivers_stay_apart() -> None:
    code = (
        "import sys\n"
        "import drivers.base, drivers.modbus.profiles\n"
        "assert 'pymodbus' not in sys.modules, 'profiles imported pymodbus'\n"
        "import drivers.modbus.devices, drivers.modbus.sim_device\n"
        "assert 'pymodbus' in sys.modules\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('controller', 'schedules')]\n"
        "assert not bad, bad\n"
    )
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
