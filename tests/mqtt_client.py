"""An operator's MQTT client for tests: subscribes, records every message, publishes commands.

It is a real paho client on the test broker, the way `mosquitto_sub`/`mosquitto_pub` would be:
nothing in the controller is mocked. Waits poll the record with a deadline, so the event loop
that runs the unit under test keeps turning.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from controller.mqtt_link import send_at_once

WAIT_S = 5.0


@dataclass(frozen=True)
class Received:
    """One message as the operator saw it."""

    topic: str
    payload: bytes
    retain: bool
    correlation_data: bytes | None = None

    def json(self) -> Any:
        """The payload parsed as JSON."""
        return json.loads(self.payload)

    @property
    def text(self) -> str:
        """The payload as text."""
        return self.payload.decode()


class Operator:
    """A paho client (MQTT 5) connected to `host:port`, subscribed to `topics` with QoS 1."""

    def __init__(
        self, host: str, port: int, topics: list[str], client_id: str = "operator"
    ) -> None:
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
        client.on_message = self._on_message
        # without it each small message can wait ~40 ms for a delayed ACK, which makes a
        # test of hundreds of round trips slow (the unit under test sets it on its own socket)
        client.on_socket_open = send_at_once
        client.on_subscribe = lambda *args: self._subscribed.set()
        client.on_connect = lambda c, *args: c.subscribe([(t, 1) for t in topics])
        client.connect(host, port)
        client.loop_start()
        if not self._subscribed.wait(WAIT_S):
            client.loop_stop()
            raise TimeoutError(f"operator not subscribed to {topics} on {host}:{port}")
        self.client = client

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        props = getattr(msg, "properties", None)
        correlation = getattr(props, "CorrelationData", None)
        with self._lock:
            self.received.append(
                Received(msg.topic, bytes(msg.payload), bool(msg.retain), correlation)
            )

    def publish(
        self,
        topic: str,
        payload: str | bytes,
        *,
        response_topic: str | None = None,
        correlation_data: bytes | None = None,
        retain: bool = False,
    ) -> None:
        """Publish with QoS 1 and wait until the broker has it."""
        props = None
        if response_topic is not None or correlation_data is not None:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            if response_topic is not None:
                props.ResponseTopic = response_topic
            if correlation_data is not None:
                props.CorrelationData = correlation_data
        info = self.client.publish(topic, payload, qos=1, retain=retain, properties=props)
        info.wait_for_publish(WAIT_S)

    def command(self, topic: str, body: dict[str, Any]) -> None:
        """Publish one JSON command."""
        self.publish(topic, json.dumps(body))

    def messages(self, topic: str) -> list[Received]:
        """Every message received on `topic` so far, oldest first."""
        with self._lock:
            return [m for m in self.received if m.topic == topic]

    def last(self, topic: str) -> Received | None:
        """The newest message on `topic`, or None."""
        found = self.messages(topic)
        return found[-1] if found else None

    def count(self, topic: str) -> int:
        """How many messages arrived on `topic`."""
        return len(self.messages(topic))

    async def wait_for(
        self,
        topic: str,
        check: Callable[[Received], bool] = lambda m: True,
        *,
        after: int = 0,
        timeout_s: float = WAIT_S,
    ) -> Received:
        """The first message on `topic`, from the `after`-th on, for which `check` holds."""
        deadline = time.monotonic() + timeout_s
        while True:
            for message in self.messages(topic)[after:]:
                if check(message):
                    return message
            if time.monotonic() > deadline:
                seen = [m.payload[:200] for m in self.messages(topic)[after:]]
                raise AssertionError(f"no matching message on {topic} in {timeout_s} s; saw {seen}")
            await asyncio.sleep(0.005)

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()
