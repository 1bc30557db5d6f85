"""The energy ledger when time, the disk or the configuration misbehave.

- A nearly full disk: the oldest unsent records are summarised into daily records with the
  same totals, an `energy_summarised` event says so, and every kWh still arrives once.
- A full disk: intervals the ledger cannot store wait in memory and are stored once it can.
- A clock that cannot be believed: the open interval grows until it can, and says so.
- A reload: the open interval is stored up to the reload, and accounting goes on.

Everything runs on the real ledger (SQLite) and, where MQTT matters, a real mosquitto.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from controller import energy_service
from controller.clock import ManualClock
from controller.clock_trust import FixedSync
from controller.config_load import load_settings
from controller.energy_service import EnergyService
from controller.events import Event, ZoneState
from controller.ledger import Interval, Ledger, Record
from controller.logs import LogfmtFormatter
from controller.meter_poll import next_slot
from controller.report.data import build_report
from controller.report.labels import kind_label
from controller.settings import Settings
from drivers.sim import SimMeter
from tests.conftest import Broker, eventually
from tests.mqtt_client import Operator
from tests.test_energy import ledger_of, physical_kwh, run_hours
from tests.unit_harness import SIM, running_unit, sim_settings

BANGKOK = ZoneInfo("Asia/Bangkok")
MB = 1_000_000


def interval(zone: str, start: datetime, minutes: int = 15, **values: object) -> Interval:
    """A lit interval of `zone` from `start`."""
    fields: dict[str, object] = {
        "kwh": 0.01,
        "baseline_kwh": 0.025,
        "source": "meter",
        "burn_s": minutes * 60,
        "avg_level": 60.0,
        "scheduled_s": minutes * 60,
        "available_s": minutes * 60,
    } | values
    return Interval(zone, start, start + timedelta(minutes=minutes), **fields)  # type: ignore[arg-type]


def logged(caplog: pytest.LogCaptureFixture) -> str:
    """The log as the unit writes it (logfmt, with every field)."""
    return "\n".join(LogfmtFormatter().format(r) for r in caplog.records)


def totals(records: list[Record]) -> tuple[float, float, int, int, int]:
    items = [r.interval for r in records]
    return (
        round(sum(i.kwh for i in items), 9),
        round(sum(i.baseline_kwh for i in items), 9),
        sum(i.burn_s for i in items),
        sum(i.scheduled_s for i in items),
        sum(i.available_s for i in items),
    )


# ---- summarising, in the ledger ---------------------------------------------------------------


def test_summarise_keeps_every_total_and_leaves_sent_and_in_flight_records(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    day = datetime(2026, 11, 1, tzinfo=BANGKOK)
    levels = [0.0, 100.0, 50.0, 50.0]
    items = [
        interval("a", day + timedelta(minutes=15 * i), avg_level=levels[i % 4], kwh=0.01 * i)
        for i in range(8)
    ]
    items += [interval("b", day + timedelta(minutes=15 * i), source="model") for i in range(8)]
    records = ledger.append(items, {})
    before = totals(list(ledger.iter_all()))
    a_seqs = [r.seq for r in records if r.interval.zone == "a"]
    b_seqs = [r.seq for r in records if r.interval.zone == "b"]
    ledger.mark_sent(a_seqs[:2])  # the broker has the first two of zone a
    in_flight = {b_seqs[4]}  # and may be receiving one of zone b right now

    summary = ledger.summarise(day, day + timedelta(days=1), keep=in_flight)

    assert summary.replaced == tuple(sorted(a_seqs[2:] + b_seqs[:4] + b_seqs[5:]))
    after = list(ledger.iter_all())
    assert totals(after) == before  # not a Wh lost or counted twice
    in_time = sorted(after, key=lambda r: r.interval.start)
    by_zone = {z: [r for r in in_time if r.interval.zone == z] for z in ("a", "b")}
    # zone a: the two sent records, then one summary of the six unsent ones
    assert [r.seq for r in by_zone["a"][:2]] == a_seqs[:2]
    (a_summary,) = by_zone["a"][2:]
    assert (a_summary.interval.start, a_summary.interval.end) == (
        day + timedelta(minutes=30),
        day + timedelta(hours=2),
    )
    assert a_summary.interval.avg_level == pytest.approx(sum(levels[2:] + levels) / 6)
    assert a_summary.interval.source == "meter" and not a_summary.sent
    assert f"seq {a_seqs[2]} to {a_seqs[-1]}" in (a_summary.interval.note or "")
    # zone b: split around the record in flight, which stays as it was
    assert [(r.interval.start, r.interval.end) for r in by_zone["b"]] == [
        (day, day + timedelta(hours=1)),
        (day + timedelta(hours=1), day + timedelta(minutes=75)),
        (day + timedelta(minutes=75), day + timedelta(hours=2)),
    ]
    assert b_seqs[4] in [r.seq for r in by_zone["b"]]
    # new seqs, above every seq ever given, and none reused
    new = [r.seq for r in summary.records]
    assert min(new) > max(a_seqs + b_seqs)
    assert [r.seq for r in ledger.unsent(100)] == sorted(r.seq for r in after if not r.sent)


def test_summarise_keeps_apart_what_is_not_back_to_back(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    day = datetime(2026, 11, 1, tzinfo=BANGKOK)
    items = [
        interval("a", day),
        interval("a", day + timedelta(minutes=15), source="model"),  # another source
        interval("a", day + timedelta(minutes=30), source="model"),
        interval("a", day + timedelta(hours=5)),  # after a gap (the unit was off)
        interval("a", day + timedelta(days=1)),  # the next day
        interval("a", day + timedelta(days=1, minutes=15)),
    ]
    ledger.append(items, {})
    summary = ledger.summarise(day, day + timedelta(days=1))
    assert len(summary.replaced) == 2 and len(summary.records) == 1
    spans = [(r.interval.start, r.interval.source) for r in ledger.iter_all()]
    assert sorted(spans) == sorted(
        [
            (day, "meter"),
            (day + timedelta(minutes=15), "model"),  # the summary of two model records
            (day + timedelta(hours=5), "meter"),
            (day + timedelta(days=1), "meter"),
            (day + timedelta(days=1, minutes=15), "meter"),
        ]
    )
    assert ledger.summarise(day, day + timedelta(days=1)).replaced == ()  # nothing left to do


# ---- the service: a full disk, a nearly full disk ---------------------------------------------


def service(
    settings: Settings, clock: ManualClock, **kwargs: object
) -> tuple[EnergyService, list[Event]]:
    """An energy service on a real ledger, every zone lit; the events it raises."""
    events: list[Event] = []
    made = EnergyService(
        settings,
        clock,
        Ledger(settings.data_dir),
        trusted=lambda: True,
        on_event=events.append,
        **kwargs,  # type: ignore[arg-type]
    )
    for zone in made.account.zones:
        made.on_state(zone, ZoneState(level=100, source="schedule", since=clock.now()))
    return made, events


def on_a_disk(
    tmp_path: Path, start: datetime
) -> tuple[EnergyService, list[Event], ManualClock, list[int]]:
    """A service from `start` on a disk whose free bytes the test sets (`free[0]`)."""
    clock = ManualClock(start)
    free = [10_000 * MB]
    energy, events = service(sim_settings(None, tmp_path), clock, free_space=lambda _: free[0])
    return energy, events, clock, free


async def close_until(energy: EnergyService, clock: ManualClock, end: datetime) -> None:
    while clock.now() < end:
        await clock.advance_to(clock.now() + timedelta(minutes=15))
        energy.close(clock.now())


async def test_a_full_disk_keeps_intervals_in_memory_until_they_can_be_stored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = sim_settings(None, tmp_path)
    clock = ManualClock(datetime(2026, 11, 21, 18, 0, tzinfo=BANGKOK))
    energy, _ = service(settings, clock)
    await close_until(energy, clock, clock.now() + timedelta(hours=1))
    stored = energy.ledger.unsent_count()
    # the file may not grow any more: SQLite answers "database or disk is full"
    pages = energy.ledger._db.execute("PRAGMA page_count").fetchone()[0]
    energy.ledger._db.execute(f"PRAGMA max_page_count = {pages}")
    for _ in range(40):  # until the file's last free page is used
        await close_until(energy, clock, clock.now() + timedelta(minutes=15))
        if energy.pending:
            break
    assert energy.pending, "the ledger never filled up"
    assert "energy_not_stored" in logged(caplog) and "kept in memory" in logged(caplog)
    waiting = len(energy.pending)
    await close_until(energy, clock, clock.now() + timedelta(minutes=15))
    assert len(energy.pending) == waiting + 3  # nothing stored, nothing dropped
    energy.ledger._db.execute("PRAGMA max_page_count = 1000000")  # space freed
    await close_until(energy, clock, clock.now() + timedelta(minutes=15))
    assert energy.pending == []
    records = list(energy.ledger.iter_all())
    assert len(records) >= stored + waiting + 6
    assert [r.seq for r in records] == list(range(records[0].seq, records[0].seq + len(records)))
    # back to back: no interval missing, none twice
    for zone in energy.account.zones:
        spans = [(r.interval.start, r.interval.end) for r in records if r.interval.zone == zone]
        assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
        assert spans[-1][1] == clock.now()


async def test_a_nearly_full_disk_summarises_the_oldest_unsent_day_once_room_is_needed(
    tmp_path: Path,
) -> None:
    energy, events, clock, free = on_a_disk(tmp_path, datetime(2026, 11, 21, tzinfo=BANGKOK))
    await close_until(energy, clock, datetime(2026, 11, 24, 12, 0, tzinfo=BANGKOK))
    ledger = energy.ledger
    before = totals(list(ledger.iter_all()))
    assert ledger.unsent_count() == 3 * 96 * 3.5
    free[0] = 10 * MB  # below energy.min_free_mb (64)
    await close_until(energy, clock, clock.now() + timedelta(minutes=15))
    summarised = [e for e in events if e.kind == "energy_summarised"]
    assert summarised, "nothing was summarised"
    first = summarised[0]
    assert first.zone is None
    assert "2026-11-21" in first.detail and "10 MB free" in first.detail
    assert "energy.min_free_mb is 64" in first.detail and "journalctl" in first.detail
    records = list(ledger.iter_all())
    day1 = [r for r in records if r.interval.start.date().isoformat() == "2026-11-21"]
    assert len(day1) == 3  # one record per zone for the whole day
    assert all(r.interval.end - r.interval.start == timedelta(days=1) for r in day1)
    # today (the 24th) is still being written: left as it is
    today = [r for r in records if r.interval.start.date().isoformat() == "2026-11-24"]
    assert len(today) == 3 * 4 * 12 + 3
    # with the three new records of the last interval, every total holds
    new = ledger.records(clock.now() - timedelta(minutes=15), clock.now())
    assert totals(records) == tuple(
        round(a + b, 9) for a, b in zip(before, totals(new), strict=True)
    )

    # the freed room takes the next records: the file stops growing
    def pages() -> int:
        with sqlite3.connect(ledger.path) as db:
            return int(db.execute("PRAGMA page_count").fetchone()[0])

    size = pages()
    await close_until(energy, clock, clock.now() + timedelta(days=2))
    assert pages() <= size
    # and each day summarised again is a whole day that has passed
    days = [
        e.detail.split(" energy records of ")[1][:10]
        for e in events
        if e.kind == "energy_summarised"
    ]
    assert days == sorted(set(days)) and "2026-11-26" not in days


async def test_a_nearly_full_disk_with_nothing_to_summarise_says_how_to_free_space(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = sim_settings(None, tmp_path)
    clock = ManualClock(datetime(2026, 11, 21, 18, 0, tzinfo=BANGKOK))
    energy, events = service(settings, clock, free_space=lambda _: 1 * MB)
    await close_until(energy, clock, clock.now() + timedelta(hours=2))
    assert energy.pending == [] and energy.ledger.unsent_count() == 3 * 8  # all stored
    assert "disk_nearly_full" in logged(caplog) and "journalctl --vacuum-size" in logged(caplog)
    assert not [e for e in events if e.kind == "energy_summarised"]


async def test_broker_away_for_days_on_a_nearly_full_disk_every_kwh_arrives_once(
    mosquitto: Broker, tmp_path: Path
) -> None:
    topic = "streetlight/skn-001/energy"
    settings = sim_settings(mosquitto, tmp_path)
    clock = ManualClock(datetime(2026, 11, 21, 16, 0, tzinfo=BANGKOK))
    free = [10_000 * MB]
    events: list[Event] = []
    async with running_unit(settings, clock, free_space=lambda _: free[0]) as unit:
        unit.add_event_listener(events.append)
        mosquitto.stop()
        await eventually(lambda: unit.link is not None and not unit.link.connected, "down")
        await run_hours(clock, 48)
        free[0] = 5 * MB
        await run_hours(clock, 1)
        assert any(e.kind == "energy_summarised" for e in events)
        mosquitto.start()
        platform = Operator(mosquitto.host, mosquitto.port, [topic], client_id="platform")
        try:
            # ~200 records at 50 a second: at least 4 s of pacing
            await eventually(
                lambda: ledger_of(settings).unsent_count() == 0, "all sent", timeout_s=60
            )
            stored = list(ledger_of(settings).iter_all())
            await platform.wait_for(topic, after=len(stored) - 1, timeout_s=10)
            received = [m.json() for m in platform.messages(topic)]
        finally:
            platform.close()
        lamps_kwh = physical_kwh(unit)
    seqs = [r["seq"] for r in received]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)  # oldest first, each once
    assert set(seqs) == {r.seq for r in stored}
    daily = [
        r
        for r in received
        if r["start"].endswith("T00:00:00+07:00") and r["end"].endswith("T00:00:00+07:00")
    ]
    assert daily, "no daily summary was sent"
    # every kWh the lamps used up to the last closed interval, counted once
    assert sum(r["kwh"] for r in received) == pytest.approx(lamps_kwh, rel=0.002)


# ---- the clock and reloads --------------------------------------------------------------------


async def test_an_untrusted_clock_grows_the_interval_and_notes_it(tmp_path: Path) -> None:
    settings = sim_settings(None, tmp_path)
    clock = ManualClock(datetime(2026, 11, 21, 16, 0, tzinfo=BANGKOK))
    sync = FixedSync(False)
    async with running_unit(settings, clock, sync=sync):
        await run_hours(clock, 2)
        assert list(ledger_of(settings).iter_all()) == []  # nothing closed on that clock
        sync.value = True  # NTP answers at 18:00
        await run_hours(clock, 1)
    records = [r.interval for r in ledger_of(settings).iter_all() if r.interval.zone == "soi-3"]
    first = records[0]
    # nothing closed while the clock was not believed: one record from the start to the last
    # boundary before it was (the zones' return to their schedule closes it), noted as such
    assert first.start == datetime(2026, 11, 21, 16, 0, tzinfo=BANGKOK)
    assert first.end == datetime(2026, 11, 21, 18, 0, tzinfo=BANGKOK)
    assert first.burn_s == 7200  # the fail-safe level, lit throughout
    assert "the clock was not synchronised" in (first.note or "")
    assert all("synchronised" not in (r.note or "") for r in records[1:])
    assert records[1].start == first.end


async def test_a_reload_stores_the_open_interval_up_to_the_reload(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = tmp_path / "config.toml"
    text = SIM.read_text().replace(
        'data_dir = "../../var/sim"', f'data_dir = "{tmp_path / "data"}"'
    )
    config.write_text(text)
    clock = ManualClock(datetime(2026, 11, 21, 19, 0, tzinfo=BANGKOK))
    kinds: list[str] = []
    async with running_unit(load_settings(config), clock, config_file=config) as unit:
        unit.add_event_listener(lambda e: kinds.append(e.kind))
        await run_hours(clock, 0.5 + 5 / 60)  # 19:35
        unit.request_reload()
        await eventually(lambda: "config_reloaded" in kinds, "reloaded")
        await run_hours(clock, 0.5)  # 20:05: the 19:45 interval closed by the new service
        lamps_kwh = physical_kwh(unit)
    records = [r.interval for r in Ledger(tmp_path / "data", readonly=True).iter_all()]
    soi = [
        (r.start.strftime("%H:%M"), r.end.strftime("%H:%M")) for r in records if r.zone == "soi-3"
    ]
    assert soi == [
        ("19:00", "19:15"),
        ("19:15", "19:30"),
        ("19:30", "19:35"),  # closed at the reload
        ("19:35", "19:45"),  # the new settings' first, to the wall clock's boundary
        ("19:45", "20:00"),
        ("20:00", "20:05"),  # stored at the stop
    ]
    assert sum(r.kwh for r in records) == pytest.approx(lamps_kwh, rel=0.002)


async def test_an_untrusted_clock_is_looked_at_once_per_boundary_not_in_a_busy_loop(
    tmp_path: Path,
) -> None:
    settings = sim_settings(None, tmp_path)
    clock = ManualClock(datetime(2026, 11, 21, 16, 0, tzinfo=BANGKOK))
    asked = [0]

    def trusted() -> bool:
        asked[0] += 1
        return False

    energy = EnergyService(
        settings, clock, Ledger(settings.data_dir), trusted=trusted, on_event=lambda _: None
    )
    task = asyncio.create_task(energy.run())
    for _ in range(8):  # two hours
        await clock.advance_to(clock.now() + timedelta(minutes=15))
    energy.stop()
    await task
    assert asked[0] <= 10  # once per boundary (8), give or take
    assert list(energy.ledger.iter_all()) == []


@pytest.mark.parametrize(
    ("zone", "interval", "now", "boundary"),
    [
        ("Asia/Bangkok", 900, "2026-11-21T18:07:00", "2026-11-21T18:15:00"),
        ("Asia/Kolkata", 3600, "2026-11-21T18:10:00", "2026-11-21T19:00:00"),
        ("Asia/Kathmandu", 1800, "2026-11-21T18:10:00", "2026-11-21T18:30:00"),
        ("Australia/Adelaide", 3600, "2026-11-21T23:59:59", "2026-11-22T00:00:00"),
    ],
)
def test_interval_boundaries_are_on_the_local_wall_clock(
    zone: str, interval: int, now: str, boundary: str
) -> None:
    tz = ZoneInfo(zone)
    at = datetime.fromisoformat(now).replace(tzinfo=tz)
    assert next_slot(at, interval, tz) == datetime.fromisoformat(boundary).replace(tzinfo=tz)


async def test_a_report_over_summarised_days_keeps_its_totals_and_says_why(
    tmp_path: Path,
) -> None:
    energy, events, clock, free = on_a_disk(tmp_path, datetime(2026, 11, 21, tzinfo=BANGKOK))
    settings = energy.settings
    await close_until(energy, clock, datetime(2026, 11, 23, 12, 0, tzinfo=BANGKOK))
    first, last = date(2026, 11, 21), date(2026, 11, 22)
    before = build_report(settings, energy.ledger, first, last)
    free[0] = 1 * MB
    await close_until(energy, clock, clock.now() + timedelta(minutes=15))
    for event in events:
        energy.on_event(event)  # as the unit does: kept for the report
    after = build_report(settings, energy.ledger, first, last)
    assert after.total.kwh == pytest.approx(before.total.kwh, abs=1e-9)
    assert after.total.baseline_kwh == pytest.approx(before.total.baseline_kwh, abs=1e-9)
    assert [r.totals.kwh for r in after.rows] == pytest.approx([r.totals.kwh for r in before.rows])
    # the typical night shows the days still kept in detail, not a day-long record at 00:00
    assert after.profile.levels["soi-3"][0] is None  # 16:00: only the summarised days had it
    today = build_report(settings, energy.ledger, first, date(2026, 11, 23))
    kinds = [(e.kind, e.fault) for e in today.events]
    assert ("energy_summarised", False) in kinds
    assert kind_label("th", "energy_summarised").startswith("สรุป")


async def test_more_than_a_month_offline_on_a_nearly_full_disk_summarises_every_past_day(
    tmp_path: Path,
) -> None:
    settings = sim_settings(None, tmp_path)
    clock = ManualClock(datetime(2026, 10, 1, 0, 0, tzinfo=BANGKOK))
    energy, events = service(settings, clock, free_space=lambda _: 1 * MB)
    # the disk is nearly full all along: each past day is summarised as room is needed
    await close_until(energy, clock, datetime(2026, 11, 10, 12, 0, tzinfo=BANGKOK))
    summarised = [e.detail.split(" energy records of ")[1][:10] for e in events]
    assert summarised == sorted(set(summarised))  # oldest first, each day once
    assert summarised[0] == "2026-10-01"
    assert len(summarised) > 31  # not stuck behind the first month
    per_day: dict[date, int] = {}
    for record in energy.ledger.iter_all():
        day = record.interval.start.astimezone(BANGKOK).date()
        per_day[day] = per_day.get(day, 0) + 1
    whole = [d for d, n in per_day.items() if n == 3]  # one record per zone
    assert sorted(whole) == [date.fromisoformat(d) for d in summarised]


async def test_a_record_acknowledged_late_is_marked_sent_and_never_summarised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(energy_service, "_ACK_TIMEOUT_S", 0.05)
    settings = sim_settings(None, tmp_path)
    clock = ManualClock(datetime(2026, 11, 21, 0, 0, tzinfo=BANGKOK))
    free = [10_000 * MB]
    energy, _ = service(settings, clock, free_space=lambda _: free[0])
    await close_until(energy, clock, datetime(2026, 11, 22, 12, 0, tzinfo=BANGKOK))
    loop = asyncio.get_running_loop()
    published: list[tuple[int, asyncio.Future[bool]]] = []

    def publish(record: Record) -> asyncio.Future[bool]:
        future: asyncio.Future[bool] = loop.create_future()
        published.append((record.seq, future))
        return future

    energy.publisher = publish
    task = asyncio.create_task(energy.run())
    energy.kick()
    await eventually(lambda: len(published) >= 20, "a batch published")
    await asyncio.sleep(0.2)  # the unit's wait for the acks gives up
    first = [seq for seq, _ in published[:20]]
    energy.publisher = None  # the link drops; then the broker's acks arrive after all
    for _, future in published[:20]:
        future.set_result(True)
    await asyncio.sleep(0)
    free[0] = 1 * MB
    await close_until(energy, clock, clock.now() + timedelta(minutes=15))
    stored = {r.seq for r in energy.ledger.iter_all()}
    assert set(first) <= stored  # not replaced by a summary: the broker has them
    energy.publisher = publish
    energy.kick()
    await eventually(
        lambda: all(r.sent for r in energy.ledger.iter_all() if r.seq in first), "marked sent"
    )
    energy.stop()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_modelled_intervals_of_a_silent_meter_are_not_counted_again_after_a_restart(
    tmp_path: Path,
) -> None:
    clock = ManualClock(datetime(2026, 11, 21, 18, 0, tzinfo=BANGKOK))
    settings = sim_settings(None, tmp_path)
    async with running_unit(settings, clock) as unit:
        await run_hours(clock, 1)  # 19:00, lit
        sim_meter = unit.hardware.meters["cabinet"] if unit.hardware else None
        assert isinstance(sim_meter, SimMeter)
        sim_meter.go_silent()
        await run_hours(clock, 1)  # 20:00: four modelled intervals
        counter_at_stop = sim_meter.counter_wh()
        first_kwh = physical_kwh(unit)
    # the same meter goes on counting while the controller restarts (kept in this test by
    # starting the new simulated meter where the old one stopped)
    async with running_unit(settings, clock) as unit:
        assert unit.hardware is not None
        sim_meter = unit.hardware.meters["cabinet"]
        assert isinstance(sim_meter, SimMeter)
        sim_meter.set_counter(counter_at_stop / 1000)
        await run_hours(clock, 1)
        second_kwh = physical_kwh(unit)
    total = sum(r.interval.kwh for r in ledger_of(settings).iter_all())
    assert total == pytest.approx(first_kwh + second_kwh, rel=0.01)
