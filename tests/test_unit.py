"""The whole unit in one process: control never waits for the network, several units share a
process and a broker, stop levels, reloads, and a clock that went back across a reboot."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from controller.clock import ManualClock
from controller.clock_trust import FixedSync, LastKnownTime
from controller.command_parse import Command, CommandRefused
from controller.config_load import load_settings
from controller.logs import LogfmtFormatter
from controller.unit import LAST_KNOWN_TIME_FILE, Unit
from drivers.sim import SimOutput
from tests.conftest import LOOPBACK, Broker, eventually, free_port
from tests.mqtt_client import Operator, Received
from tests.unit_harness import SIM, running_unit, sim_settings

BANGKOK = ZoneInfo("Asia/Bangkok")
DUSK = datetime(2026, 11, 21, 17, 29, tzinfo=BANGKOK)  # just after sunset


async def _until_acked(operator: Operator, unit_id: str) -> None:
    """Probe `unit_id` with a harmless command until it answers: it is subscribed."""
    topic = f"streetlight/{unit_id}/ack"
    for attempt in range(50):
        probe = f"probe-{attempt}"
        operator.command(f"streetlight/{unit_id}/set", {"id": probe, "mode": "auto"})
        try:
            await operator.wait_for(topic, _with_id(probe), timeout_s=0.1)
            return
        except AssertionError:
            continue
    raise AssertionError(f"{unit_id} never answered")


def _with_id(command_id: str) -> Callable[[Received], bool]:
    return lambda message: message.json()["id"] == command_id


def output(unit: Unit, zone: str) -> SimOutput:
    assert unit.hardware is not None
    (sim,) = unit.hardware.sim_outputs(zone)
    return sim


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word (a hung broker)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind((LOOPBACK, 0))
        server.listen(8)
        yield server.getsockname()[1]


@pytest.mark.parametrize("where", ["nobody listens", "a silent listener"])
async def test_lamps_switch_on_time_whatever_the_broker_does(
    where: str, silent_port: int, tmp_path: Path, clock: ManualClock
) -> None:
    port = free_port() if where == "nobody listens" else silent_port
    mqtt = {"enabled": True, "host": LOOPBACK, "port": port, "connect_timeout_s": 60}
    settings = sim_settings(None, tmp_path, mqtt=mqtt)
    async with running_unit(settings, clock, wait_subscribed=False) as unit:
        assert unit.link is not None and not unit.link.connected
        await clock.advance_to(DUSK)
        assert output(unit, "soi-3").level == 100
        assert unit.states()["soi-3"].source == "schedule"


async def test_two_units_in_one_process_each_answer_a_group_command(
    mosquitto: Broker, tmp_path: Path, clock: ManualClock
) -> None:
    first = sim_settings(mosquitto, tmp_path / "a")
    second = sim_settings(
        mosquitto, tmp_path / "b", unit={**first.unit.model_dump(), "id": "skn-002"}
    )
    operator = Operator(mosquitto.host, mosquitto.port, ["streetlight/+/ack"])
    try:
        async with running_unit(first, clock) as a, running_unit(second, clock) as b:
            for unit_id in ("skn-001", "skn-002"):  # both listen (their SUBACKs are in)
                await _until_acked(operator, unit_id)
            seen = len(operator.received)
            operator.command("streetlight/group/main-road/set", {"id": "mr-7", "level": 60})
            for unit_id in ("skn-001", "skn-002"):
                ack = await operator.wait_for(
                    f"streetlight/{unit_id}/ack", lambda m: m.json()["id"] == "mr-7"
                )
                assert ack.json()["zones"] == ["soi-3", "market"]
            await eventually(
                lambda: output(a, "market").level == output(b, "market").level == 60, "both dim"
            )
            assert output(a, "school-path").level == 0  # not in main-road
            assert len(operator.received) == seen + 2  # one ack per unit
    finally:
        operator.close()


async def test_a_clean_stop_leaves_each_zone_at_its_stop_level_or_where_it_was(
    tmp_path: Path, clock: ManualClock
) -> None:
    settings = sim_settings(None, tmp_path)
    zones = [
        zone.model_copy(update={"stop_level": 30}) if zone.id == "market" else zone
        for zone in settings.zones
    ]
    settings = settings.model_copy(update={"zones": zones})
    await clock.advance_to(DUSK)
    async with running_unit(settings, clock) as unit:
        assert output(unit, "market").level == 100
        assert output(unit, "soi-3").level == 100
    assert output(unit, "market").level == 30
    assert output(unit, "soi-3").level == 100  # no stop_level: the lamps keep their light


async def test_a_clock_behind_the_last_known_time_is_not_trusted(
    tmp_path: Path, clock: ManualClock
) -> None:
    # the unit saw a later time before it rebooted: its clock now is stale, even if a
    # (misconfigured) sync source says otherwise
    LastKnownTime(tmp_path / LAST_KNOWN_TIME_FILE).save(clock.now() + timedelta(days=30))
    events: list[str] = []
    settings = sim_settings(None, tmp_path)
    unit = Unit(settings, clock, sync=FixedSync(True))
    unit.add_event_listener(lambda e: events.append(e.kind))
    task = asyncio.create_task(unit.run())
    await asyncio.wait_for(unit.wait_ready(), 5)
    try:
        assert events[0] == "clock_unsynced"
        assert {s.source for s in unit.states().values()} == {"failsafe"}
        assert output(unit, "soi-3").level == 100
    finally:
        unit.stop()
        await task


async def test_reload_adds_a_zone_and_keeps_overrides_of_the_others(
    tmp_path: Path, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    config = tmp_path / "config.toml"
    text = SIM.read_text().replace(
        'data_dir = "../../var/sim"', f'data_dir = "{tmp_path / "data"}"'
    )
    config.write_text(text)
    async with running_unit(load_settings(config), clock, config_file=config) as unit:
        command = Command(id="t", level=40, on=None, auto=False, duration_s=3600)
        unit.apply_command(command, ["market"])
        await eventually(lambda: output(unit, "market").level == 40, "override applied")
        extra = (
            '\n[[zones]]\nid = "alley"\nprofile = "residential"\nrated_w = 50\n'
            'outputs = [{ type = "sim" }]\n'
        )
        config.write_text(text.replace("# ---- metering", extra + "# ---- metering"))
        kinds: list[str] = []
        unit.add_event_listener(lambda e: kinds.append(e.kind))
        unit.request_reload()
        await eventually(lambda: "config_reloaded" in kinds, "reloaded")
        # the new zone loops publish their first states a moment after the reload
        await eventually(lambda: "alley" in unit.states(), "the new zone's first state")
        assert unit.states()["market"].source == "override"
        assert output(unit, "market").level == 40
        # a config that cannot be used is refused and changes nothing
        config.write_text(text.replace("latitude = 17.155", "latitude = 170"))
        unit.request_reload()
        await eventually(lambda: "config_reload_refused" in caplog.text, "refused")
        assert "unit.latitude" in "".join(LogfmtFormatter().format(r) for r in caplog.records)
        assert "alley" in unit.states()
        assert kinds.count("config_reloaded") == 1


async def test_a_reload_whose_mqtt_files_are_missing_is_refused_and_keeps_the_broker(
    mosquitto: Broker, tmp_path: Path, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    config = tmp_path / "config.toml"
    text = SIM.read_text().replace('data_dir = "../../var/sim"', f'data_dir = "{tmp_path / "d"}"')
    text = (
        text.replace(
            "enabled = false ",
            "enabled = true\nreconnect_min_s = 0.1\nreconnect_max_s = 1\n#",
        )
        .replace("port = 1883", f"port = {mosquitto.port}")
        .replace('host = "localhost"', f'host = "{mosquitto.host}"')
    )
    config.write_text(text)
    async with running_unit(load_settings(config), clock, config_file=config) as unit:
        link = unit.link
        broken = text.replace(
            f'host = "{mosquitto.host}"',
            f'host = "{mosquitto.host}"\nusername = "lamp"\npassword_file = "no-such-file"',
        )
        config.write_text(broken)
        unit.request_reload()
        await eventually(lambda: "config_reload_refused" in caplog.text, "refused")
        assert unit.link is link and link is not None and link.connected
        assert unit.settings.mqtt.username is None  # the old settings stay


async def test_a_stored_maintenance_override_is_the_level_outputs_start_at(
    tmp_path: Path, clock: ManualClock
) -> None:
    from controller.overrides import OverrideStore
    from schedules.decide import Override

    await clock.advance_to(DUSK + timedelta(hours=1))
    store = OverrideStore(tmp_path)
    store.put({"market": Override(0, clock.now() + timedelta(hours=2), "maint")})
    store.close()
    async with running_unit(sim_settings(None, tmp_path), clock) as unit:
        # claimed dark at once: no flash of full light before the daemon's first decision
        assert {level for _, level in output(unit, "market").history} == {0}
        assert output(unit, "soi-3").level == 100


async def test_an_override_is_refused_while_the_clock_is_not_trusted(
    tmp_path: Path, clock: ManualClock
) -> None:
    settings = sim_settings(None, tmp_path)
    async with running_unit(settings, clock, sync=FixedSync(False)) as unit:
        with pytest.raises(CommandRefused, match="not synchronised"):
            unit.apply_command(Command("x", 0, None, False, 600), ["market"])
        unit.apply_command(Command("y", None, None, True, None), ["market"])  # auto is fine
        assert unit.states()["market"].source == "failsafe"
