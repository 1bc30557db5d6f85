"""The energy ledger through the real unit: sim.toml's zones and meter over simulated nights.

The unit runs on a ManualClock; the simulated luminaires integrate their own energy exactly
and the simulated meter counts it on its own counter, so the ledger can be checked against
both. Faults are injected into the simulated hardware (lamps out, a stuck relay, a counter
reset, a replaced meter) as they happen in a street.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from controller.clock import ManualClock
from controller.events import Event
from controller.ledger import Interval, Ledger, LedgerError
from controller.settings import Settings
from controller.unit import Unit
from drivers.sim import SimMeter, SimOutput
from tests.conftest import Broker, eventually
from tests.mqtt_client import Operator
from tests.unit_harness import running_unit, sim_settings

BANGKOK = ZoneInfo("Asia/Bangkok")
ZONES = ["soi-3", "market", "school-path"]


def outputs(unit: Unit) -> list[SimOutput]:
    assert unit.hardware is not None
    return [o for zone in ZONES for o in unit.hardware.sim_outputs(zone)]


def output(unit: Unit, zone: str) -> SimOutput:
    assert unit.hardware is not None
    (sim,) = unit.hardware.sim_outputs(zone)
    return sim


def meter(unit: Unit) -> SimMeter:
    assert unit.hardware is not None
    found = unit.hardware.meters["cabinet"]
    assert isinstance(found, SimMeter)
    return found


def ledger_of(settings: Settings) -> Ledger:
    return Ledger(settings.data_dir, readonly=True)


async def run_hours(clock: ManualClock, hours: float) -> None:
    """Move the unit's clock on, an hour at a time (so every sleeper wakes in order)."""
    end = clock.now() + timedelta(hours=hours)
    while clock.now() < end:
        await clock.advance_to(min(clock.now() + timedelta(hours=1), end))


def physical_kwh(unit: Unit) -> float:
    return sum(o.energy_kwh() for o in outputs(unit))


@pytest.fixture
def evening() -> ManualClock:
    return ManualClock(datetime(2026, 11, 21, 16, 0, tzinfo=BANGKOK))


async def test_a_night_in_the_ledger_matches_the_lamps_and_the_meters_counter(
    tmp_path: Path, evening: ManualClock
) -> None:
    settings = sim_settings(None, tmp_path)
    async with running_unit(settings, evening) as unit:
        await run_hours(evening, 16 + 1 / 60)  # 16:00 to 08:00 next morning (closed 08:00:02)
        lamps_kwh = physical_kwh(unit)
        counter_kwh = meter(unit).counter_wh() / 1000
    records = list(ledger_of(settings).iter_all())
    # one record per zone per 15 minutes, aligned to the wall clock, in the unit's offset
    # a new ledger's seqs start at its first record's end in Unix milliseconds, so a
    # re-flashed card never reuses a seq a receiver holds; then one by one
    first_seq = int(datetime(2026, 11, 21, 16, 15, tzinfo=BANGKOK).timestamp()) * 1000 + 1
    assert [r.seq for r in records] == list(range(first_seq, first_seq + len(records)))
    # 16 hours of whole intervals, then the stop stores 08:00 to 08:01 as a shorter record
    assert len(records) == 3 * 16 * 4 + 3
    last = records[-1].interval
    assert (f"{last.start:%H:%M:%S}", f"{last.end:%H:%M:%S}") == ("08:00:00", "08:01:00")
    first = records[0].interval
    assert first.start == datetime(2026, 11, 21, 16, 0, tzinfo=BANGKOK)
    assert first.start.utcoffset() == timedelta(hours=7)
    assert all(r.interval.source == "meter" for r in records)
    total = sum(r.interval.kwh for r in records)
    assert lamps_kwh > 5  # a real night's energy, not an empty ledger
    assert total == pytest.approx(lamps_kwh, rel=0.001)
    assert total == pytest.approx(counter_kwh, rel=0.001)


async def test_baseline_burning_hours_level_and_availability(
    tmp_path: Path, evening: ManualClock
) -> None:
    settings = sim_settings(None, tmp_path)
    async with running_unit(settings, evening):
        await run_hours(evening, 16)
    records = [r.interval for r in ledger_of(settings).iter_all()]
    soi = [r for r in records if r.zone == "soi-3"]
    scheduled_h = sum(r.scheduled_s for r in soi) / 3600
    assert 10.5 < scheduled_h < 13.5  # sunset to sunrise at 17° N in November
    # the baseline is the old lamps (1000 W) at full power while the schedule wants light
    assert sum(r.baseline_kwh for r in soi) == pytest.approx(1.0 * scheduled_h, rel=1e-6)
    # nothing failed: lit whenever the schedule wanted it
    assert sum(r.available_s for r in soi) == sum(r.scheduled_s for r in soi)
    assert sum(r.burn_s for r in soi) == pytest.approx(scheduled_h * 3600, abs=5)
    lit = [r for r in soi if r.burn_s == 900]
    assert lit and all(40 <= r.avg_level <= 100 for r in lit)
    assert all(r.avg_level == 0 and r.kwh == 0 for r in soi if r.scheduled_s == 0)
    # dimming saves: the LEDs use far less than the baseline
    assert sum(r.kwh for r in soi) < 0.5 * sum(r.baseline_kwh for r in soi)


async def test_lamps_out_raise_lamp_failure_and_availability_falls(
    tmp_path: Path, evening: ManualClock
) -> None:
    settings = sim_settings(None, tmp_path)
    events: list[Event] = []
    async with running_unit(settings, evening) as unit:
        unit.add_event_listener(events.append)
        await run_hours(evening, 4)  # 20:00, every zone lit
        for o in outputs(unit):
            o.fail_lamps()
        await run_hours(evening, 1)
        failures = [e for e in events if e.kind == "lamp_failure"]
        assert len(failures) == 1
        assert "meter cabinet reads 0 W" in failures[0].detail
        for o in outputs(unit):
            o.repair()
        await run_hours(evening, 1)
    recovered = [e for e in events if e.kind == "recovered" and "lamp_failure" in e.detail]
    assert len(recovered) == 1
    ledger = ledger_of(settings)
    kinds = [n.kind for n in ledger.health(evening.now() - timedelta(days=1), evening.now())]
    assert kinds.count("lamp_failure") == 1 and "recovered" in kinds
    market = [r.interval for r in ledger.iter_all() if r.interval.zone == "market"]
    failed = [r for r in market if r.start.hour == 20]
    assert sum(r.kwh for r in failed) < 0.01
    # out from the failure's confirmation (two readings) to the recovery: not available,
    # though the output was driven as scheduled
    scheduled = sum(r.scheduled_s for r in failed)
    available = sum(r.available_s for r in failed)
    assert scheduled == 3600
    assert 3600 - 5 * 60 <= scheduled - available <= 3600
    assert all(r.burn_s == 900 for r in failed)  # burn_s is the commanded level (contract)
    before = [r for r in market if r.start.hour == 19]
    assert sum(r.available_s for r in before) == sum(r.scheduled_s for r in before) == 3600


async def test_a_stuck_relay_by_day_is_a_day_burner(tmp_path: Path, evening: ManualClock) -> None:
    settings = sim_settings(None, tmp_path)
    events: list[Event] = []
    async with running_unit(settings, evening) as unit:
        unit.add_event_listener(events.append)
        output(unit, "market").stick_relay(on=True)
        await run_hours(evening, 1)  # 17:00, still day: every zone commanded off
    burners = [e for e in events if e.kind == "day_burner"]
    assert len(burners) == 1
    assert "commanded off" in burners[0].detail


@pytest.mark.parametrize("fault", ["reset", "replaced"])
async def test_a_counter_reset_or_a_replaced_meter_loses_and_doubles_nothing(
    tmp_path: Path, evening: ManualClock, fault: str
) -> None:
    settings = sim_settings(None, tmp_path)
    async with running_unit(settings, evening) as unit:
        await run_hours(evening, 5)  # 21:00, lamps lit
        if fault == "reset":
            meter(unit).reset_counter()
        else:
            meter(unit).set_counter(12345.0)
        await run_hours(evening, 3 + 1 / 60)  # the 23:45 interval closes at 00:00:02
        lamps_kwh = physical_kwh(unit)
    records = [r.interval for r in ledger_of(settings).iter_all()]
    total = sum(r.kwh for r in records)
    assert total == pytest.approx(lamps_kwh, rel=0.002)
    noted = [r for r in records if r.note and "meter cabinet" in r.note]
    assert noted, "the ledger notes the counter's break"
    assert all(r.start.hour == 21 for r in noted)


async def test_a_restart_continues_from_the_stored_counter(tmp_path: Path) -> None:
    clock = ManualClock(datetime(2026, 11, 21, 19, 0, tzinfo=BANGKOK))
    settings = sim_settings(None, tmp_path)
    async with running_unit(settings, clock) as unit:
        await run_hours(clock, 1 + 1 / 60)  # stopped at 20:01: 20:00 to 20:01 stored at stop
        first_kwh = physical_kwh(unit)
    # a restart: the simulated meter starts again at 0, like a replaced meter; the records go
    # on from the stored counter without a gap in seq or in energy
    async with running_unit(settings, clock) as unit:
        await run_hours(clock, 1)  # to 21:01: the 20:45 interval closed at 21:00:02
        second_kwh = physical_kwh(unit)
    seqs = [r.seq for r in ledger_of(settings).iter_all()]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    total = sum(r.interval.kwh for r in ledger_of(settings).iter_all())
    assert total == pytest.approx(first_kwh + second_kwh, rel=0.002)


async def test_a_silent_meter_is_modelled_then_its_counter_corrects_without_double_counting(
    tmp_path: Path, evening: ManualClock
) -> None:
    settings = sim_settings(None, tmp_path)
    async with running_unit(settings, evening) as unit:
        await run_hours(evening, 4.5)  # 20:30, every zone lit
        meter(unit).go_silent()
        await run_hours(evening, 2)  # 22:30: eight intervals without a reading
        meter(unit).answer_again()
        await run_hours(evening, 1 + 1 / 60)
        lamps_kwh = physical_kwh(unit)
        counter_kwh = meter(unit).counter_wh() / 1000
    records = [r.interval for r in ledger_of(settings).iter_all()]
    silent = [r for r in records if r.note and "gave no reading" in r.note]
    # not "meter" with 0 kWh: modelled, and said so
    assert {(r.start.hour, r.start.minute) for r in silent} >= {
        (h, m) for h in (21,) for m in (0, 15, 30, 45)
    }
    assert all(r.source == "model" and r.kwh > 0 for r in silent)
    # the counter's step after the silence covers the modelled intervals: taken off once
    total = sum(r.kwh for r in records)
    assert total == pytest.approx(lamps_kwh, rel=0.01)
    assert total == pytest.approx(counter_kwh, rel=0.01)
    after = [r for r in records if r.start.hour == 22 and r.start.minute >= 45]
    assert after and all(r.source == "meter" for r in after)


async def test_a_meter_replaced_while_the_controller_was_stopped_invents_nothing(
    tmp_path: Path,
) -> None:
    clock = ManualClock(datetime(2026, 11, 21, 19, 0, tzinfo=BANGKOK))
    settings = sim_settings(None, tmp_path)
    async with running_unit(settings, clock) as unit:
        await run_hours(clock, 1 + 1 / 60)
        first_kwh = physical_kwh(unit)
    # two days later, with a new meter counting from 0 (the simulated meter starts at 0 again)
    await clock.advance_to(clock.now() + timedelta(days=2))
    async with running_unit(settings, clock) as unit:
        await run_hours(clock, 1)
        second_kwh = physical_kwh(unit)
    records = [r.interval for r in ledger_of(settings).iter_all()]
    noted = [r for r in records if r.note and "while the controller was stopped" in r.note]
    assert noted, "the ledger says the downtime's energy is not known"
    # two days of downtime are not modelled into one record: only what this unit saw
    assert max(r.kwh for r in records) < 0.5
    assert sum(r.kwh for r in records) == pytest.approx(first_kwh + second_kwh, rel=0.01)


def test_a_readonly_ledger_that_does_not_exist_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match=r"there is no energy ledger at .*data_dir"):
        Ledger(tmp_path / "nowhere", readonly=True)


def test_the_same_interval_closed_twice_is_stored_once(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    start = datetime(2026, 11, 21, 22, 0, tzinfo=BANGKOK)
    item = Interval(
        "soi-3", start, start + timedelta(minutes=15), 0.02, 0.25, "model", 900, 60.0, 900, 900
    )
    (record,) = ledger.append([item], {})
    assert ledger.append([item], {}) == []
    assert [r.seq for r in ledger.iter_all()] == [record.seq]


def test_a_new_ledger_never_reuses_the_seqs_of_the_one_it_replaces(tmp_path: Path) -> None:
    start = datetime(2026, 11, 21, 22, 0, tzinfo=BANGKOK)
    old = Ledger(tmp_path / "old")
    items = [
        Interval(
            "z",
            start + timedelta(minutes=15 * i),
            start + timedelta(minutes=15 * (i + 1)),
            0.01,
            0.02,
            "model",
            900,
            50.0,
            900,
            900,
        )
        for i in range(500)
    ]
    last_old = old.append(items, {})[-1].seq
    # the SD card is re-flashed the next day: a new, empty ledger
    later = start + timedelta(days=6)
    new = Ledger(tmp_path / "new")
    (first_new,) = new.append(
        [
            Interval(
                "z", later, later + timedelta(minutes=15), 0.01, 0.02, "model", 900, 50.0, 900, 900
            )
        ],
        {},
    )
    assert first_new.seq > last_old


# ---- kill -9 in the middle of writing -------------------------------------------------------

_WRITER = """
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo
from controller.ledger import Interval, Ledger
ledger = Ledger(Path(sys.argv[1]))
t = datetime(2026, 1, 1, tzinfo=ZoneInfo("Asia/Bangkok"))
n = 0
while True:
    batch = []
    for z in ("a", "b", "c"):
        end = t + timedelta(minutes=15)
        batch.append(Interval(z, t, end, 0.01, 0.02, "meter", 900, 50.0, 900, 900))
    n += 1
    ledger.append(batch, {"m": (float(n), t)})
    t += timedelta(minutes=15)
    print(n, flush=True)
"""


def test_kill_9_while_writing_leaves_a_consistent_ledger_without_gaps(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    child = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(tmp_path)],
        stdout=subprocess.PIPE,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert child.stdout is not None
    for _ in range(200):  # it is writing: hundreds of transactions have committed
        child.stdout.readline()
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    db = sqlite3.connect(tmp_path / "energy.sqlite3")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    seqs = [row[0] for row in db.execute("SELECT seq FROM energy ORDER BY seq")]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # no gap, no repeat
    assert len(seqs) % 3 == 0  # every batch whole or not at all
    (counter,) = db.execute("SELECT kwh FROM meter_counter WHERE meter = 'm'").fetchone()
    assert counter == len(seqs) / 3  # the counter was written with its records, atomically
    db.close()
    ledger = Ledger(tmp_path)  # and the unit can go on writing after it
    start = datetime(2030, 1, 1, tzinfo=BANGKOK)
    item = Interval("a", start, start + timedelta(minutes=15), 0.0, 0.0, "model", 0, 0.0, 0, 0)
    assert [r.seq for r in ledger.append([item], {})] == [seqs[-1] + 1]


# ---- store and forward ------------------------------------------------------------------------


async def test_records_kept_while_the_broker_is_down_arrive_once_in_order(
    mosquitto: Broker, tmp_path: Path, evening: ManualClock
) -> None:
    topic = "streetlight/skn-001/energy"
    settings = sim_settings(mosquitto, tmp_path)
    first = Operator(mosquitto.host, mosquitto.port, [topic], client_id="before")
    try:
        async with running_unit(settings, evening) as unit:
            await run_hours(evening, 1 + 1 / 60)  # 4 intervals, sent live
            await first.wait_for(topic, after=11)
            await eventually(lambda: ledger_of(settings).unsent_count() == 0, "live ones acked")
            mosquitto.stop()
            await eventually(lambda: unit.link is not None and not unit.link.connected, "down")
            await run_hours(evening, 3)  # 12 more intervals, kept in the ledger
            assert ledger_of(settings).unsent_count() == 36
            mosquitto.start()
            later = Operator(mosquitto.host, mosquitto.port, [topic], client_id="after")
            try:
                await later.wait_for(topic, after=35, timeout_s=10)
                seqs = [m.json()["seq"] for m in later.messages(topic)]
            finally:
                later.close()
            await eventually(lambda: ledger_of(settings).unsent_count() == 0, "all marked sent")
    finally:
        first.close()
    live = [m.json()["seq"] for m in first.messages(topic)]
    assert live == list(range(live[0], live[0] + 12))
    assert seqs == list(range(live[0] + 12, live[0] + 48))  # every kept record once, in order
    record = later.messages(topic)[0].json()
    assert set(record) == {
        "seq",
        "zone",
        "start",
        "end",
        "kwh",
        "baseline_kwh",
        "source",
        "burn_s",
        "avg_level",
    }
    assert record["start"].endswith("+07:00")
