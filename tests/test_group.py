"""A zone's relay and dimmer are driven as one, in the order that keeps lamps safe."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from drivers.base import Identity, Output, SelfTestResult
from drivers.group import OutputGroup
from drivers.sim import LuminaireModel, SimOutput


class Recorder:
    """An output that writes what it is told into a log shared with its neighbours."""

    def __init__(self, name: str, switched: bool, log: list[tuple[str, int]]) -> None:
        self.name = name
        self.switched = switched
        self.level = 0
        self.fault: str | None = None
        self._log = log

    async def set_level(self, level: int) -> None:
        self._log.append((self.name, level))
        self.level = level

    def identify(self) -> Identity:
        return Identity("test", f"{self.name} model", f"{self.name} place")

    async def self_test(self, *, hold_s: float = 3.0) -> SelfTestResult:
        ok = self.fault is None
        return SelfTestResult(self.name, ok, (f"{self.name} blinked",), None if ok else self.fault)

    async def close(self) -> None:
        self._log.append((self.name, -1))


def pair() -> tuple[OutputGroup, list[tuple[str, int]], Recorder, Recorder]:
    log: list[tuple[str, int]] = []
    relay, dimmer = Recorder("relay", True, log), Recorder("dimmer", False, log)
    return OutputGroup("soi-7", [relay, dimmer]), log, relay, dimmer


async def test_switching_on_sets_the_dimmer_before_closing_the_relay() -> None:
    group, log, _, _ = pair()
    await group.set_level(30)
    assert log == [("dimmer", 30), ("relay", 30)]
    assert group.level == 30


async def test_zero_opens_the_relay_before_touching_the_dimmer() -> None:
    group, log, _, _ = pair()
    await group.set_level(30)
    log.clear()
    await group.set_level(0)
    assert log == [("relay", 0), ("dimmer", 0)]


async def test_a_bad_level_changes_nothing() -> None:
    group, log, _, _ = pair()
    with pytest.raises(ValueError, match="0 to 100"):
        await group.set_level(101)
    assert log == [] and group.level == 0


async def test_the_group_reports_every_faulty_member_and_still_drives_the_rest() -> None:
    group, log, relay, dimmer = pair()
    assert pair()[0].fault is None
    dimmer.fault = "device 2 on bus rs485 did not answer"
    relay.fault = "GPIO17 cannot be claimed"
    assert (
        group.fault
        == "relay: GPIO17 cannot be claimed; dimmer: device 2 on bus rs485 did not answer"
    )
    await group.set_level(50)
    assert ("relay", 50) in log and ("dimmer", 50) in log


async def test_switched_only_when_every_member_only_switches() -> None:
    log: list[tuple[str, int]] = []
    assert OutputGroup("a", [Recorder("r", True, log)]).switched
    assert not pair()[0].switched


async def test_identity_self_test_and_close_cover_every_member() -> None:
    group, log, _, dimmer = pair()
    identity = group.identify()
    assert identity.model == "relay model + dimmer model"
    assert identity.where == "relay place; dimmer place"
    dimmer.fault = "no answer"
    result = await group.self_test(hold_s=0)
    assert not result.ok
    assert result.steps == ("relay: relay blinked", "dimmer: dimmer blinked")
    assert result.problem == "dimmer: no answer"
    await group.close()
    assert log[-2:] == [("relay", -1), ("dimmer", -1)]


async def test_a_group_is_an_output_and_drives_simulated_lamps() -> None:
    now = datetime(2026, 11, 21, 12, tzinfo=UTC)
    lamps = SimOutput("soi-3/sim", LuminaireModel(rated_w=440), lambda: now)
    group = OutputGroup("soi-3", [lamps])
    assert isinstance(group, Output)
    await group.set_level(60)
    assert lamps.level == 60 and lamps.power_w > 0


def test_an_empty_group_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one output"):
        OutputGroup("empty", [])


class Buggy(Recorder):
    """An output whose driver breaks its promise and raises."""

    async def set_level(self, level: int) -> None:
        raise RuntimeError("driver bug")


async def test_a_member_that_raises_does_not_keep_the_others_dark() -> None:
    log: list[tuple[str, int]] = []
    relay, dimmer = Recorder("relay", True, log), Buggy("dimmer", False, log)
    group = OutputGroup("soi-7", [relay, dimmer])
    await group.set_level(100)
    assert relay.level == 100  # the relay after the failing dimmer was still switched on
    assert (
        group.fault is not None and "dimmer: driver error RuntimeError('driver bug')" in group.fault
    )
