"""A fuzzer throws random bytes and random JSON at every command topic of a running unit.

Hypothesis draws the payloads (random bytes, random JSON, near-valid commands) and topics;
they all go through a real mosquitto to a real unit. The unit must answer each with exactly
one ack, keep running, and change nothing for any command it refuses.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.clock import ManualClock, settle
from tests.conftest import Broker
from tests.mqtt_client import Operator
from tests.unit_harness import running_unit, sim_settings

P = "streetlight/skn-001"
TOPICS = [
    f"{P}/zone/soi-3/set",
    f"{P}/zone/market/set",
    f"{P}/zone/school-path/set",
    f"{P}/zone/nowhere/set",
    f"{P}/set",
    "streetlight/group/residential/set",
    "streetlight/group/main-road/set",
]
EXAMPLES = 300

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_field_values = st.one_of(
    st.integers(-5, 200),
    st.integers(55, 90000),
    st.booleans(),
    st.just("auto"),
    st.text(max_size=70),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
)
_near_commands = st.dictionaries(
    st.sampled_from(["id", "level", "on", "mode", "duration", "Level", "zone"]),
    _field_values,
    max_size=4,
)
_payloads = st.one_of(
    st.binary(max_size=1300),
    _json.map(lambda v: json.dumps(v).encode()),
    _near_commands.map(lambda v: json.dumps(v).encode()),
)


def _draw_cases() -> list[tuple[str, bytes]]:
    """EXAMPLES (topic, payload) pairs, drawn by hypothesis to cover the input space."""
    cases: list[tuple[str, bytes]] = []

    @settings(max_examples=EXAMPLES, database=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(TOPICS), _payloads)
    def collect(topic: str, payload: bytes) -> None:
        cases.append((topic, payload))

    collect()
    return cases[:EXAMPLES]


@pytest.fixture
def operator(mosquitto: Broker) -> Iterator[Operator]:
    op = Operator(mosquitto.host, mosquitto.port, [f"{P}/ack", f"{P}/zone/+/state"])
    yield op
    op.close()


def _snapshot(unit: Any) -> tuple[object, object, object]:
    levels = {zone: unit.hardware.outputs[zone].level for zone in unit.hardware.outputs}
    return dict(unit.daemon.overrides()), dict(unit.daemon.states), levels


async def test_random_commands_never_crash_and_refused_ones_change_nothing(
    mosquitto: Broker, tmp_path: Path, clock: ManualClock, operator: Operator
) -> None:
    cases = _draw_cases()
    assert len(cases) >= EXAMPLES // 2
    ticks = itertools.count(0.0, 1.0)  # one command a second, as far as the flood limit sees
    settings_ = sim_settings(mosquitto, tmp_path)
    async with running_unit(settings_, clock, monotonic=lambda: next(ticks)) as unit:
        refused = 0
        for n, (topic, payload) in enumerate(cases):
            before = _snapshot(unit)
            operator.publish(topic, payload)
            ack = (await operator.wait_for(f"{P}/ack", after=n)).json()
            await settle()
            assert set(ack) == {"id", "ok", "error", "zones", "ts"}
            if ack["ok"]:
                assert ack["error"] is None and ack["zones"]
            else:
                refused += 1
                assert isinstance(ack["error"], str) and ack["error"]
                assert ack["zones"] == []
                assert _snapshot(unit) == before, (topic, payload, ack)
        await settle()
        assert operator.count(f"{P}/ack") == len(cases)  # exactly one ack each
        assert refused > len(cases) // 2  # most random input is refused
        assert unit.daemon is not None and unit.daemon.alive
