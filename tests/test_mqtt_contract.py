"""Every row of the MQTT contract, against a real mosquitto, with sim.toml as the unit.

The operator is a real MQTT client; the unit runs on a ManualClock the test moves, so an
override's end or a meter's interval come when the test says.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from controller.clock import ManualClock, settle
from controller.clock_trust import FixedSync
from controller.unit import Unit
from drivers.sim import SimOutput
from tests.conftest import Broker, eventually
from tests.mqtt_client import Operator
from tests.unit_harness import running_unit, sim_settings

BANGKOK = ZoneInfo("Asia/Bangkok")
P = "streetlight/skn-001"
ZONES = ["soi-3", "market", "school-path"]


@pytest.fixture
def operator(mosquitto: Broker) -> Iterator[Operator]:
    op = Operator(mosquitto.host, mosquitto.port, [f"{P}/#", "reply/#", "homeassistant/#"])
    yield op
    op.close()


@pytest.fixture
async def unit(mosquitto: Broker, tmp_path: Path, clock: ManualClock) -> AsyncIterator[Unit]:
    async with running_unit(sim_settings(mosquitto, tmp_path), clock) as running:
        yield running


def state(op: Operator, zone: str) -> dict[str, object]:
    last = op.last(f"{P}/zone/{zone}/state")
    assert last is not None, f"no state for {zone}"
    return dict(last.json())


def output(unit: Unit, zone: str) -> SimOutput:
    assert unit.hardware is not None
    (sim,) = unit.hardware.sim_outputs(zone)
    return sim


async def ack_for(op: Operator, command_id: str) -> dict[str, object]:
    message = await op.wait_for(f"{P}/ack", lambda m: m.json().get("id") == command_id)
    return dict(message.json())


async def state_with(op: Operator, zone: str, command_id: str) -> dict[str, object]:
    topic = f"{P}/zone/{zone}/state"
    message = await op.wait_for(topic, lambda m: m.json()["command_id"] == command_id)
    return dict(message.json())


# ---- what the unit publishes on its own ------------------------------------------------------


async def test_status_info_and_every_zone_state_are_retained_at_start(
    unit: Unit, mosquitto: Broker, operator: Operator
) -> None:
    for topic in ("status", "info", *(f"zone/{zone}/state" for zone in ZONES)):
        await operator.wait_for(f"{P}/{topic}")  # the broker has them all now
    # a client that connects later still gets them: they are retained
    late = Operator(mosquitto.host, mosquitto.port, [f"{P}/#"], client_id="late")
    try:
        status = await late.wait_for(f"{P}/status")
        assert (status.text, status.retain) == ("online", True)
        info = (await late.wait_for(f"{P}/info")).json()
        assert info["unit"] == "skn-001"
        assert info["timezone"] == "Asia/Bangkok"
        assert set(info) == {
            "unit",
            "site",
            "version",
            "latitude",
            "longitude",
            "timezone",
            "zones",
            "started",
        }
        assert [z["id"] for z in info["zones"]] == ZONES
        assert info["zones"][0] == {
            "id": "soi-3",
            "name": "Soi 3 (residential)",
            "groups": ["residential", "main-road"],
            "rated_w": 440.0,
        }
        assert info["started"] == "2026-11-21T10:00:00+07:00"
        for zone in ZONES:
            message = await late.wait_for(f"{P}/zone/{zone}/state")
            assert message.retain
            assert message.json() == {
                "level": 0,
                "on": False,
                "source": "schedule",
                "command_id": None,
                "override_until": None,
                "ts": "2026-11-21T10:00:00+07:00",
            }
    finally:
        late.close()


async def test_a_state_goes_out_when_the_schedule_changes_a_level(
    unit: Unit, operator: Operator, clock: ManualClock
) -> None:
    topic = f"{P}/zone/soi-3/state"
    await operator.wait_for(topic)
    before = operator.count(topic)
    await clock.advance_to(datetime(2026, 11, 21, 17, 29, tzinfo=BANGKOK))  # after sunset
    on = await operator.wait_for(topic, lambda m: m.json()["level"] == 100, after=before)
    assert on.json()["source"] == "schedule"
    assert on.json()["ts"].startswith("2026-11-21T17:2")
    assert on.json()["ts"].endswith("+07:00")


# ---- commands ----------------------------------------------------------------------------------


async def test_dim_one_zone_acks_then_confirms_with_a_state(
    unit: Unit, operator: Operator, clock: ManualClock
) -> None:
    operator.command(f"{P}/zone/soi-3/set", {"id": "ops-0142", "level": 40, "duration": 7200})
    ack = await ack_for(operator, "ops-0142")
    assert ack == {
        "id": "ops-0142",
        "ok": True,
        "error": None,
        "zones": ["soi-3"],
        "ts": "2026-11-21T10:00:00+07:00",
    }
    confirmed = await state_with(operator, "soi-3", "ops-0142")
    assert confirmed == {
        "level": 40,
        "on": True,
        "source": "override",
        "command_id": "ops-0142",
        "override_until": "2026-11-21T12:00:00+07:00",
        "ts": "2026-11-21T10:00:00+07:00",
    }
    assert output(unit, "soi-3").level == 40
    assert output(unit, "market").level == 0  # only the addressed zone


async def test_on_true_uses_the_zones_on_level_and_on_false_switches_off(
    unit: Unit, operator: Operator
) -> None:
    operator.command(f"{P}/zone/school-path/set", {"id": "a", "on": True})
    assert (await state_with(operator, "school-path", "a"))["level"] == 100
    operator.command(f"{P}/zone/school-path/set", {"id": "b", "on": False})
    off = await state_with(operator, "school-path", "b")
    assert (off["level"], off["on"], off["source"]) == (0, False, "override")
    assert output(unit, "school-path").level == 0


async def test_default_duration_is_four_hours_and_the_override_ends_on_time(
    unit: Unit, operator: Operator, clock: ManualClock
) -> None:
    operator.command(f"{P}/zone/market/set", {"id": "m1", "level": 70})
    confirmed = await state_with(operator, "market", "m1")
    assert confirmed["override_until"] == "2026-11-21T14:00:00+07:00"
    topic = f"{P}/zone/market/state"
    seen = operator.count(topic)
    await clock.advance_to(datetime(2026, 11, 21, 13, 59, tzinfo=BANGKOK))
    assert output(unit, "market").level == 70
    await clock.advance_to(datetime(2026, 11, 21, 14, 0, 1, tzinfo=BANGKOK))
    back = await operator.wait_for(topic, lambda m: m.json()["source"] == "schedule", after=seen)
    assert back.json() == {
        "level": 0,
        "on": False,
        "source": "schedule",
        "command_id": None,
        "override_until": None,
        "ts": "2026-11-21T14:00:00+07:00",
    }
    assert output(unit, "market").level == 0


async def test_mode_auto_ends_the_override_now(unit: Unit, operator: Operator) -> None:
    operator.command(f"{P}/zone/soi-3/set", {"id": "x", "level": 80, "duration": 3600})
    await state_with(operator, "soi-3", "x")
    operator.command(f"{P}/zone/soi-3/set", {"id": "back", "mode": "auto"})
    assert (await ack_for(operator, "back"))["ok"] is True
    back = await state_with(operator, "soi-3", "back")
    assert (back["level"], back["source"], back["override_until"]) == (0, "schedule", None)
    assert output(unit, "soi-3").level == 0


async def test_a_unit_command_reaches_every_zone_with_one_ack(
    unit: Unit, operator: Operator
) -> None:
    operator.command(f"{P}/set", {"id": "all", "level": 100, "duration": 600})
    ack = await ack_for(operator, "all")
    assert (ack["ok"], ack["zones"]) == (True, ZONES)
    for zone in ZONES:
        assert (await state_with(operator, zone, "all"))["level"] == 100
        assert output(unit, zone).level == 100
    assert len([m for m in operator.messages(f"{P}/ack") if m.json()["id"] == "all"]) == 1


async def test_a_group_command_reaches_the_zones_in_the_group(
    unit: Unit, operator: Operator
) -> None:
    operator.command("streetlight/group/residential/set", {"id": "g1", "level": 60})
    ack = await ack_for(operator, "g1")
    assert (ack["ok"], ack["zones"]) == (True, ["soi-3", "school-path"])
    await state_with(operator, "soi-3", "g1")
    await state_with(operator, "school-path", "g1")
    assert [output(unit, z).level for z in ZONES] == [60, 0, 60]


async def test_a_group_of_another_unit_is_not_ours(unit: Unit, operator: Operator) -> None:
    operator.command("streetlight/group/somewhere-else/set", {"id": "g2", "level": 60})
    operator.command(f"{P}/zone/market/set", {"id": "after", "level": 5})
    await ack_for(operator, "after")
    assert [m.json()["id"] for m in operator.messages(f"{P}/ack")] == ["after"]


async def test_an_unknown_zone_is_refused_with_the_zones_there_are(
    unit: Unit, operator: Operator
) -> None:
    operator.command(f"{P}/zone/soi-9/set", {"id": "u1", "level": 40})
    ack = await ack_for(operator, "u1")
    assert ack["ok"] is False and ack["zones"] == []
    assert "soi-9" in str(ack["error"]) and "soi-3" in str(ack["error"])


@pytest.mark.parametrize(
    "payload",
    [
        b"level=40",
        b"",
        b"40",
        b'"on"',
        b"[40]",
        b'{"level": 40, "zone": "soi-3"}',
        b'{"level": "40"}',
        b'{"level": 40.5}',
        b'{"level": true}',
        b'{"on": 1}',
        b'{"level": 140}',
        b'{"level": 40, "duration": 30}',
        b'{"level": 40, "duration": 172800}',
        b'{"mode": "manual"}',
        b"{}",
        b'{"level": 40, "on": true}',
        b'{"mode": "auto", "duration": 600}',
        b'{"id": "", "level": 1}',
        b'{"level": 40, "pad": "' + b"x" * 1100 + b'"}',
    ],
)
async def test_an_invalid_command_is_refused_with_a_reason_and_changes_nothing(
    unit: Unit, operator: Operator, payload: bytes
) -> None:
    topic = f"{P}/zone/soi-3/state"
    await operator.wait_for(topic)
    states_before = operator.count(topic)
    operator.publish(f"{P}/zone/soi-3/set", payload)
    ack = (await operator.wait_for(f"{P}/ack")).json()
    assert ack["ok"] is False
    assert isinstance(ack["error"], str) and len(ack["error"]) > 10
    assert ack["zones"] == []
    # nothing changed: no new state, the lamps where they were, no override stored
    operator.command(f"{P}/zone/market/set", {"id": "probe", "level": 3})
    await ack_for(operator, "probe")
    assert operator.count(topic) == states_before
    assert output(unit, "soi-3").level == 0
    assert unit.daemon is not None and "soi-3" not in unit.daemon.overrides()


async def test_a_refused_command_echoes_its_id_when_it_has_a_good_one(
    unit: Unit, operator: Operator
) -> None:
    operator.command(f"{P}/zone/soi-3/set", {"id": "bad-1", "level": 101})
    ack = await ack_for(operator, "bad-1")
    assert ack["ok"] is False and "level" in str(ack["error"])


async def test_a_flood_above_the_rate_is_refused_and_earlier_commands_stay(
    mosquitto: Broker, tmp_path: Path, clock: ManualClock, operator: Operator
) -> None:
    frozen = [1000.0]  # the unit's second does not move while the flood arrives
    settings = sim_settings(mosquitto, tmp_path)
    async with running_unit(settings, clock, monotonic=lambda: frozen[0]) as unit:
        for n in range(25):
            operator.command(f"{P}/zone/soi-3/set", {"id": f"f{n}", "level": n + 1})
        await operator.wait_for(f"{P}/ack", lambda m: m.json()["id"] == "f24")
        acks = {m.json()["id"]: m.json() for m in operator.messages(f"{P}/ack")}
        assert [acks[f"f{n}"]["ok"] for n in range(25)] == [True] * 20 + [False] * 5
        assert "mqtt.max_commands_per_s" in str(acks["f20"]["error"])
        await state_with(operator, "soi-3", "f19")
        assert output(unit, "soi-3").level == 20  # the last accepted one
        frozen[0] += 1.0  # a second later, commands are taken again
        operator.command(f"{P}/zone/soi-3/set", {"id": "later", "level": 50})
        assert (await ack_for(operator, "later"))["ok"] is True


async def test_response_topic_gets_the_same_ack_with_the_correlation_data(
    unit: Unit, operator: Operator
) -> None:
    operator.publish(
        f"{P}/zone/soi-3/set",
        json.dumps({"id": "rr-1", "level": 30}),
        response_topic="reply/ops-desk",
        correlation_data=b"\x00req-77",
    )
    reply = await operator.wait_for("reply/ops-desk")
    ack = await ack_for(operator, "rr-1")
    assert reply.json() == ack
    assert reply.correlation_data == b"\x00req-77"
    # a refused command answers there too
    operator.publish(
        f"{P}/zone/soi-3/set", b"nope", response_topic="reply/ops-desk", correlation_data=b"c2"
    )
    refused = await operator.wait_for("reply/ops-desk", lambda m: m.correlation_data == b"c2")
    assert refused.json()["ok"] is False


async def test_every_accepted_command_is_confirmed_even_at_the_same_level(
    unit: Unit, operator: Operator
) -> None:
    operator.command(f"{P}/zone/soi-3/set", {"level": 40})
    first = await operator.wait_for(f"{P}/zone/soi-3/state", lambda m: m.json()["level"] == 40)
    seen = operator.count(f"{P}/zone/soi-3/state")
    operator.command(f"{P}/zone/soi-3/set", {"level": 40, "duration": 600})
    again = await operator.wait_for(f"{P}/zone/soi-3/state", after=seen)
    assert again.json()["level"] == 40
    assert again.json()["override_until"] != first.json()["override_until"]


async def test_every_command_of_a_burst_is_confirmed_by_its_own_state_in_order(
    mosquitto: Broker, tmp_path: Path, clock: ManualClock, operator: Operator
) -> None:
    settings = sim_settings(mosquitto, tmp_path, mqtt={"max_commands_per_s": 1000})
    async with running_unit(settings, clock) as unit:
        topic = f"{P}/zone/soi-3/state"
        await operator.wait_for(topic)
        ids = [f"b{n}" for n in range(200)]
        # sent without waiting for each: they reach the unit faster than the zone applies them
        infos = [
            operator.client.publish(
                f"{P}/zone/soi-3/set", json.dumps({"id": i, "level": n % 100 + 1}), qos=1
            )
            for n, i in enumerate(ids)
        ]
        for info in infos:
            info.wait_for_publish(5)
        await state_with(operator, "soi-3", ids[-1])
        confirmed = [m.json()["command_id"] for m in operator.messages(topic)]
        assert [c for c in confirmed if c is not None] == ids  # each once, in order
        # the newest state, the one the broker keeps, carries the command in force
        assert state(operator, "soi-3")["command_id"] == ids[-1]
        assert state(operator, "soi-3")["level"] == 100 == output(unit, "soi-3").level


async def test_a_maintenance_override_at_zero_is_not_raised_by_motion(
    mosquitto: Broker, tmp_path: Path, clock: ManualClock, operator: Operator
) -> None:
    settings = sim_settings(mosquitto, tmp_path, quiet=False)
    night = datetime(2026, 11, 21, 20, 0, tzinfo=BANGKOK)
    await clock.advance_to(night)
    async with running_unit(settings, clock) as unit:
        operator.command(
            f"{P}/zone/school-path/set", {"id": "maint", "level": 0, "duration": 10800}
        )
        await state_with(operator, "school-path", "maint")
        await clock.advance(2 * 3600)  # passers-by walk the path all the while
        assert unit.daemon is not None
        assert unit.daemon.states["school-path"].source == "override"
        assert output(unit, "school-path").level == 0


# ---- meters and events -------------------------------------------------------------------------


async def test_meter_readings_go_out_on_the_meters_interval(
    unit: Unit, operator: Operator, clock: ManualClock
) -> None:
    await operator.wait_for(f"{P}/status")
    await clock.advance(60)  # sim.toml reads its meter every 60 s, on the minute
    first = await operator.wait_for(f"{P}/meter", lambda m: "T10:01:00" in m.json()["ts"])
    reading = first.json()
    assert set(reading) == {
        "meter",
        "voltage",
        "current",
        "power",
        "power_factor",
        "frequency",
        "energy_kwh",
        "ts",
    }
    assert (reading["meter"], reading["ts"]) == ("cabinet", "2026-11-21T10:01:00+07:00")
    assert not first.retain
    seen = operator.count(f"{P}/meter")
    await clock.advance(60)
    later = await operator.wait_for(f"{P}/meter", after=seen)
    assert later.json()["ts"] == "2026-11-21T10:02:00+07:00"


async def test_a_broken_output_sends_driver_fault_then_recovered(
    unit: Unit, operator: Operator, clock: ManualClock
) -> None:
    output(unit, "market").break_driver("driver has no mains: check the breaker")
    operator.command(f"{P}/zone/market/set", {"id": "dim", "level": 50})  # found on the write
    fault = await operator.wait_for(f"{P}/event", lambda m: m.json()["kind"] == "driver_fault")
    assert fault.json()["zone"] == "market"
    failsafe = await operator.wait_for(
        f"{P}/zone/market/state", lambda m: m.json()["source"] == "failsafe"
    )
    assert failsafe.json()["level"] == 100
    output(unit, "market").repair()
    await clock.advance(11)
    recovered = await operator.wait_for(f"{P}/event", lambda m: m.json()["kind"] == "recovered")
    assert recovered.json()["zone"] == "market"


async def test_an_untrusted_clock_holds_failsafe_and_says_clock_unsynced(
    mosquitto: Broker, tmp_path: Path, clock: ManualClock, operator: Operator
) -> None:
    sync = FixedSync(False)
    async with running_unit(sim_settings(mosquitto, tmp_path), clock, sync=sync) as unit:
        event = await operator.wait_for(f"{P}/event")
        assert event.json()["kind"] == "clock_unsynced"
        assert "synchronised" in event.json()["detail"]
        for zone in ZONES:
            held = await operator.wait_for(f"{P}/zone/{zone}/state")
            assert (held.json()["source"], held.json()["level"]) == ("failsafe", 100)
            assert output(unit, zone).level == 100  # lights on, never dark by accident
        sync.value = True
        await clock.advance(10)
        await operator.wait_for(f"{P}/event", lambda m: m.json()["kind"] == "recovered")
        await operator.wait_for(f"{P}/zone/soi-3/state", lambda m: m.json()["source"] == "schedule")
        assert output(unit, "soi-3").level == 0  # daytime


# ---- online and offline ------------------------------------------------------------------------


async def test_a_clean_stop_publishes_offline(
    mosquitto: Broker, tmp_path: Path, clock: ManualClock, operator: Operator
) -> None:
    async with running_unit(sim_settings(mosquitto, tmp_path), clock):
        await operator.wait_for(f"{P}/status", lambda m: m.text == "online")
    offline = await operator.wait_for(f"{P}/status", lambda m: m.text == "offline")
    assert offline.text == "offline"


async def test_after_a_broker_restart_the_unit_reconnects_and_republishes(
    unit: Unit, mosquitto: Broker, clock: ManualClock
) -> None:
    operator = Operator(mosquitto.host, mosquitto.port, [f"{P}/#"])
    operator.command(f"{P}/zone/soi-3/set", {"id": "keep", "level": 45})
    await state_with(operator, "soi-3", "keep")
    operator.close()
    mosquitto.stop()  # no persistence: the broker forgets every retained message
    await eventually(lambda: unit.link is not None and not unit.link.connected, "disconnected")
    mosquitto.start()
    await eventually(lambda: unit.link is not None and unit.link.connected, "reconnected")
    fresh = Operator(mosquitto.host, mosquitto.port, [f"{P}/#"], client_id="fresh")
    try:
        assert (await fresh.wait_for(f"{P}/status")).text == "online"
        await fresh.wait_for(f"{P}/info")
        kept = await fresh.wait_for(f"{P}/zone/soi-3/state")
        assert (kept.json()["level"], kept.json()["command_id"]) == (45, "keep")
        # and it takes commands again: the subscriptions were made again
        fresh.command(f"{P}/zone/soi-3/set", {"id": "again", "level": 55})
        assert (await ack_for(fresh, "again"))["ok"] is True
    finally:
        fresh.close()


async def test_overrides_survive_a_restart_of_the_unit(
    mosquitto: Broker, tmp_path: Path, clock: ManualClock, operator: Operator
) -> None:
    settings = sim_settings(mosquitto, tmp_path)
    async with running_unit(settings, clock):
        operator.command(f"{P}/zone/market/set", {"id": "long", "level": 35, "duration": 7200})
        await state_with(operator, "market", "long")
    await clock.advance(600)
    async with running_unit(settings, clock) as again:
        assert again.daemon is not None
        restored = again.daemon.states["market"]
        assert (restored.level, restored.source, restored.command_id) == (35, "override", "long")
        assert output(again, "market").level == 35
        await clock.advance(7200)
        assert output(again, "market").level == 0


async def test_home_assistant_discovery_when_enabled(
    mosquitto: Broker, tmp_path: Path, clock: ManualClock, operator: Operator
) -> None:
    settings = sim_settings(mosquitto, tmp_path, mqtt={"homeassistant_discovery": True})
    async with running_unit(settings, clock):
        light = await operator.wait_for("homeassistant/light/streetlight_skn-001/soi-3/config")
        config = light.json()
        late = Operator(mosquitto.host, mosquitto.port, ["homeassistant/#"], client_id="ha")
        try:  # retained, so Home Assistant finds it whenever it starts
            kept = await late.wait_for("homeassistant/light/streetlight_skn-001/soi-3/config")
            assert kept.retain
        finally:
            late.close()
        assert config["command_topic"] == f"{P}/zone/soi-3/set"
        assert config["state_topic"] == f"{P}/zone/soi-3/state"
        energy = await operator.wait_for(
            "homeassistant/sensor/streetlight_skn-001/cabinet_energy/config"
        )
        assert energy.json()["state_class"] == "total_increasing"
        # what Home Assistant sends for "on at brightness 102" is a command the unit takes
        operator.publish(f"{P}/zone/soi-3/set", b'{"level": 40 }')
        await operator.wait_for(f"{P}/zone/soi-3/state", lambda m: m.json()["level"] == 40)


async def test_nothing_is_published_for_home_assistant_by_default(
    unit: Unit, operator: Operator
) -> None:
    await operator.wait_for(f"{P}/status")
    await settle()
    assert not [m for m in operator.received if m.topic.startswith("homeassistant/")]
