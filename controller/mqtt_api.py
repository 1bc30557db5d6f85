"""The unit's MQTT interface, as the contract (docs/mqtt.md) defines it: topics and payloads.

It turns zone states, events and meter readings into messages, and command messages into calls
to the unit; every command gets exactly one ack. The connection itself is `MqttLink`'s job.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from controller import __version__
from controller.clock import local_iso
from controller.command_parse import Command, CommandRefused, RateLimiter, parse_command
from controller.events import Event, ZoneState
from controller.ledger import Record
from controller.logs import log_event
from controller.mqtt_link import Message, MqttLink, Publication
from controller.settings import Settings
from drivers.base import MeterReading

log = logging.getLogger(__name__)

# Events raised while the broker is unreachable are sent when it comes back, up to this many
# (the newest are kept: a unit offline for weeks must not grow without bound).
_EVENT_BACKLOG = 200
# Home Assistant restarted: answer within this many seconds, at a random moment.
_BIRTH_JITTER_S = 5.0


class CommandTarget(Protocol):
    """What the interface needs of the unit to carry out a command."""

    def apply_command(self, command: Command, zones: Sequence[str]) -> None:
        """Carry out `command` on `zones`, or raise `CommandRefused` and change nothing."""
        ...

    def states(self) -> Mapping[str, ZoneState]:
        """Every zone's current state."""
        ...


def state_payload(state: ZoneState, tz: ZoneInfo) -> dict[str, Any]:
    """The contract's State of one zone."""
    return {
        "level": state.level,
        "on": state.level > 0,
        "source": state.source,
        "command_id": state.command_id,
        "override_until": local_iso(state.override_until, tz) if state.override_until else None,
        "ts": local_iso(state.since, tz),
    }


def info_payload(settings: Settings, started: datetime) -> dict[str, Any]:
    """The contract's Info: what the unit is and which zones it drives."""
    unit = settings.unit
    return {
        "unit": unit.id,
        "site": unit.site,
        "version": __version__,
        "latitude": unit.latitude,
        "longitude": unit.longitude,
        "timezone": unit.timezone,
        "zones": [
            {"id": z.id, "name": z.label, "groups": list(z.groups), "rated_w": z.rated_w}
            for z in settings.zones
        ],
        "started": local_iso(started, unit.tz),
    }


def event_payload(event: Event, tz: ZoneInfo) -> dict[str, Any]:
    """The contract's Event."""
    return {
        "kind": event.kind,
        "zone": event.zone,
        "detail": event.detail,
        "ts": local_iso(event.ts, tz),
    }


def meter_payload(meter: str, reading: MeterReading, tz: ZoneInfo) -> dict[str, Any]:
    """The contract's live meter reading."""
    return {
        "meter": meter,
        "voltage": round(reading.voltage, 2),
        "current": round(reading.current, 3),
        "power": round(reading.power, 1),
        "power_factor": round(reading.power_factor, 3),
        "frequency": round(reading.frequency, 2),
        "energy_kwh": round(reading.energy_kwh, 3),
        "ts": local_iso(reading.ts, tz),
    }


def energy_payload(record: Record) -> dict[str, Any]:
    """The contract's Energy record (times as stored: the unit's offset when written)."""
    item = record.interval
    return {
        "seq": record.seq,
        "zone": item.zone,
        "start": item.start.isoformat(timespec="seconds"),
        "end": item.end.isoformat(timespec="seconds"),
        "kwh": round(item.kwh, 4),
        "baseline_kwh": round(item.baseline_kwh, 4),
        "source": item.source,
        "burn_s": item.burn_s,
        "avg_level": round(item.avg_level, 1),
    }


def _dump(payload: Mapping[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


class Topics:
    """Every topic of one unit."""

    def __init__(self, settings: Settings) -> None:
        prefix, unit = settings.mqtt.topic_prefix, settings.unit.id
        self.prefix = prefix
        self.base = f"{prefix}/{unit}"
        self.status = f"{self.base}/status"
        self.info = f"{self.base}/info"
        self.ack = f"{self.base}/ack"
        self.energy = f"{self.base}/energy"
        self.meter = f"{self.base}/meter"
        self.event = f"{self.base}/event"
        self.unit_set = f"{self.base}/set"
        self.groups = sorted({g for zone in settings.zones for g in zone.groups})

    def state(self, zone_id: str) -> str:
        """Where zone `zone_id` publishes its state."""
        return f"{self.base}/zone/{zone_id}/state"

    def zone_set(self, zone_id: str) -> str:
        """Where commands for zone `zone_id` arrive."""
        return f"{self.base}/zone/{zone_id}/set"

    def group_set(self, group: str) -> str:
        """Where commands for group `group` arrive, on every unit."""
        return f"{self.prefix}/group/{group}/set"

    def subscriptions(self) -> set[str]:
        """What the unit subscribes to: its zones (any id, to refuse unknown ones), itself, its
        groups."""
        return {
            f"{self.base}/zone/+/set",
            self.unit_set,
            *(self.group_set(g) for g in self.groups),
        }


class MqttInterface:
    """Publishes what the unit does and carries out the commands it receives."""

    def __init__(
        self,
        settings: Settings,
        link: MqttLink,
        target: CommandTarget,
        *,
        now: Callable[[], datetime],
        started: datetime,
        monotonic: Callable[[], float] = time.monotonic,
        discovery: Callable[[], list[tuple[str, str]]] | None = None,
        discovery_birth_topic: str | None = None,
        backlog: Sequence[Event] = (),
    ) -> None:
        self.settings = settings
        self.topics = Topics(settings)
        self.link = link
        self.target = target
        self._now = now
        self._started = started
        self._tz = settings.unit.tz
        self._limiter = RateLimiter(settings.mqtt.max_commands_per_s, monotonic)
        self._zone_ids = [zone.id for zone in settings.zones]
        self._group_zones = {
            group: [z.id for z in settings.zones if group in z.groups]
            for group in self.topics.groups
        }
        self._events: deque[Event] = deque(backlog, maxlen=_EVENT_BACKLOG)
        # called after every connect, once everything retained is published again
        self.connect_listeners: list[Callable[[], None]] = []
        self._discovery = discovery
        self._flooding = False
        self._birth_topic = discovery_birth_topic
        link.on_connected = self._on_connected
        link.on_message = self._on_message
        subscriptions = self.topics.subscriptions()
        if discovery_birth_topic is not None:
            subscriptions.add(discovery_birth_topic)
        link.subscribe(subscriptions)

    def farewell(self) -> list[Publication]:
        """What a clean stop publishes before disconnecting: `offline`, as the will says."""
        return [Publication(self.topics.status, "offline", qos=1, retain=True)]

    # ---- publishing ------------------------------------------------------------------------

    def publish_state(self, zone_id: str, state: ZoneState) -> None:
        """Publish a zone's state (retained); while offline, the next connect publishes it."""
        if self.link.connected:
            payload = _dump(state_payload(state, self._tz))
            self.link.publish(self.topics.state(zone_id), payload, qos=1, retain=True)

    def publish_event(self, event: Event) -> None:
        """Publish an event now, or when the broker is back (the newest few hundred are kept)."""
        if self.link.connected:
            self.link.publish(self.topics.event, _dump(event_payload(event, self._tz)), qos=1)
        else:
            self._events.append(event)

    def backlog(self) -> list[Event]:
        """The events still waiting for the broker (handed to the interface that replaces
        this one on a reload)."""
        return list(self._events)

    def publish_meter(self, meter: str, reading: MeterReading) -> None:
        """Publish a live meter reading (QoS 0: a missed one is replaced by the next)."""
        if self.link.connected:
            payload = _dump(meter_payload(meter, reading, self._tz))
            self.link.publish(self.topics.meter, payload, qos=0)

    def publish_energy(self, record: Record) -> asyncio.Future[bool] | None:
        """Publish an Energy record (QoS 1); the future turns True when the broker has it.
        None when not connected: the ledger keeps the record for later."""
        if not self.link.connected:
            return None
        return self.link.publish(self.topics.energy, _dump(energy_payload(record)), qos=1)

    def _on_connected(self) -> None:
        self.announce()
        for listener in self.connect_listeners:
            try:
                listener()
            except Exception:  # a listener's bug must not stop the next one
                log.exception("connect_listener_failed")

    def announce(self) -> None:
        """Publish everything retained again (status, info, states, discovery) and the events
        held back while offline: the broker may have restarted empty."""
        self.link.publish(self.topics.status, "online", qos=1, retain=True)
        info = _dump(info_payload(self.settings, self._started))
        self.link.publish(self.topics.info, info, qos=1, retain=True)
        for zone_id, state in self.target.states().items():
            self.publish_state(zone_id, state)
        self._publish_discovery()
        while self._events and self.link.connected:
            self.publish_event(self._events.popleft())

    def _publish_discovery(self) -> None:
        if self._discovery is None:
            return
        for topic, payload in self._discovery():
            self.link.publish(topic, payload, qos=1, retain=True)

    # ---- commands --------------------------------------------------------------------------

    def _on_message(self, message: Message) -> None:
        if message.topic == self._birth_topic:
            if message.payload == b"online":  # Home Assistant restarted: announce again,
                # after a random pause, so a fleet does not answer all in the same instant
                delay = random.uniform(0, _BIRTH_JITTER_S)  # noqa: S311 - not cryptography
                asyncio.get_running_loop().call_later(delay, self._publish_discovery)
            return
        addressed, unknown = self._addressed(message.topic)
        if addressed is None and unknown is None:
            return  # not a command topic of ours (cannot happen with our subscriptions)
        zones = addressed or []
        command_id: str | None = None
        allowed = self._limiter.allow()
        try:
            try:
                command = parse_command(message.payload)
            except CommandRefused as exc:
                if allowed:
                    raise
                command_id = exc.command_id  # echoed in the flood's ack below
            else:
                command_id = command.id
            if not allowed:
                raise CommandRefused(self._limiter.refusal)
            if unknown is not None:
                raise CommandRefused(
                    f"this unit has no zone {unknown!r}; its zones are {', '.join(self._zone_ids)}"
                )
            self.target.apply_command(command, zones)
        except CommandRefused as exc:
            command_id = command_id if command_id is not None else exc.command_id
            self._ack(message, command_id, error=str(exc), zones=[])
            # a flood is logged once when it starts, not once per message (the SD card)
            flooding = not allowed
            if not (flooding and self._flooding):
                log_event(
                    log,
                    "command_flood" if flooding else "command_refused",
                    level=logging.WARNING,
                    topic=message.topic,
                    id=command_id,
                    error=str(exc),
                )
            self._flooding = flooding
            return
        self._flooding = False
        self._ack(message, command_id, error=None, zones=zones)
        log_event(
            log, "command_accepted", topic=message.topic, id=command_id, zones=",".join(zones)
        )

    def _addressed(self, topic: str) -> tuple[list[str] | None, str | None]:
        """(zones addressed, None), or (None, unknown zone id), or (None, None) when the topic
        is not a command topic."""
        if topic == self.topics.unit_set:
            return list(self._zone_ids), None
        zone_prefix = f"{self.topics.base}/zone/"
        if topic.startswith(zone_prefix) and topic.endswith("/set"):
            zone_id = topic[len(zone_prefix) : -len("/set")]
            if zone_id in self._zone_ids:
                return [zone_id], None
            return None, zone_id
        group_prefix = f"{self.topics.prefix}/group/"
        if topic.startswith(group_prefix) and topic.endswith("/set"):
            zones = self._group_zones.get(topic[len(group_prefix) : -len("/set")])
            if zones:
                return list(zones), None
        return None, None

    def _ack(
        self, message: Message, command_id: str | None, *, error: str | None, zones: list[str]
    ) -> None:
        payload = _dump(
            {
                "id": command_id,
                "ok": error is None,
                "error": error,
                "zones": zones,
                "ts": local_iso(self._now(), self._tz),
            }
        )
        self.link.publish(self.topics.ack, payload, qos=1)
        response = message.response_topic
        if response is None or not self.link.v5:
            return
        if "+" in response or "#" in response:
            log_event(
                log,
                "response_topic_refused",
                level=logging.WARNING,
                topic=response,
                error="a response topic cannot hold wildcards",
            )
            return
        self.link.publish(response, payload, qos=1, correlation_data=message.correlation_data)
