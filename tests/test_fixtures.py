"""The fixtures of conftest.py keep their docstrings' promises, checked with the real programs."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import queue
import select
import stat
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from gpiozero import Device, OutputDevice, PWMOutputDevice
from gpiozero.pins.mock import MockFactory, MockPWMPin
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient
from pymodbus.exceptions import ConnectionException, ModbusException
from pymodbus.server import ModbusSerialServer
from pymodbus.simulator import DataType, SimData, SimDevice

from controller.clock import ManualClock, settle
from tests.conftest import (
    CLOCK_START,
    Broker,
    MosquittoFactory,
    PtyPair,
    mosquitto_config,
    release_mock_factory,
)

WAIT_S = 5.0  # upper bound of every wait below; the happy paths take milliseconds


# --------------------------------------------------------------------------------------------
# helpers


class MqttProbe:
    """A paho-mqtt 2.x MQTTv5 client on its own network thread, with queues to wait on."""

    def __init__(self, broker: Broker, client_id: str) -> None:
        self.broker = broker
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            # no automatic reconnect: its 1 s wait would make close() block for 1 s
            reconnect_on_failure=False,
        )
        self.connects: queue.Queue[ReasonCode] = queue.Queue()
        self.disconnects: queue.Queue[ReasonCode] = queue.Queue()
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.acks: queue.Queue[tuple[int, ReasonCode]] = queue.Queue()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self.connects.put(reason_code)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self.disconnects.put(reason_code)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self.messages.put(message)

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties,
    ) -> None:
        self.acks.put((mid, reason_code))

    def connect(self) -> None:
        """Connect (raises ConnectionRefusedError when nobody listens) and wait for CONNACK."""
        self.client.connect(self.broker.host, self.broker.port, keepalive=10)
        self.client.loop_start()
        reason = self.connects.get(timeout=WAIT_S)
        assert not reason.is_failure, reason

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()

    def publish_and_ack(self, topic: str, payload: bytes, *, retain: bool = False) -> ReasonCode:
        """Publish with QoS 1 and return the PUBACK's reason code."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        mid, reason = self.acks.get(timeout=WAIT_S)
        assert mid == info.mid
        return reason


@contextlib.contextmanager
def mqtt_probe(broker: Broker, client_id: str) -> Iterator[MqttProbe]:
    probe = MqttProbe(broker, client_id)
    probe.connect()
    try:
        yield probe
    finally:
        probe.close()


@contextlib.contextmanager
def quiet_logger(name: str) -> Iterator[None]:
    """Silence logger `name` (pymodbus logs ERROR and hex dumps on expected failures)."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def open_tty(path: str) -> int:
    return os.open(path, os.O_RDWR | os.O_NOCTTY)


def read_exactly(fd: int, count: int) -> bytes:
    """Read `count` bytes from `fd`, failing after WAIT_S."""
    data = b""
    deadline = time.monotonic() + WAIT_S
    while len(data) < count:
        remaining = deadline - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(remaining, 0))
        assert ready, f"got {len(data)} of {count} bytes within {WAIT_S} s"
        data += os.read(fd, count - len(data))
    return data


def assert_link_works(pair: PtyPair) -> None:
    """Every byte value goes from a to b, and a reply from b to a."""
    fd_a, fd_b = open_tty(pair.a), open_tty(pair.b)
    try:
        payload = bytes(range(256))  # raw: no echo, no CR/LF mapping, no XON/XOFF
        os.write(fd_a, payload)
        assert read_exactly(fd_b, len(payload)) == payload
        os.write(fd_b, b"\x01\x03reply\r\n")
        assert read_exactly(fd_a, 9) == b"\x01\x03reply\r\n"
    finally:
        os.close(fd_a)
        os.close(fd_b)


async def wait_until(condition: Callable[[], bool]) -> None:
    """Poll `condition` on the event loop until it is true, failing after WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"still false after {WAIT_S} s"
        await asyncio.sleep(0.01)


def meter(device_id: int) -> SimDevice:
    """A Modbus device: holding registers 0, 1 = 0x1234, 42; input registers 0..1 = float 230.5."""
    return SimDevice(
        id=device_id,
        simdata=(
            [SimData(0, count=8, values=False, datatype=DataType.BITS)],
            [SimData(0, count=8, values=False, datatype=DataType.BITS)],
            [SimData(0, values=[0x1234, 42], datatype=DataType.REGISTERS)],
            [SimData(0, values=[230.5], datatype=DataType.FLOAT32)],
        ),
    )


async def start_rtu_server(port: str) -> ModbusSerialServer:
    server = ModbusSerialServer(meter(1), framer=FramerType.RTU, port=port, baudrate=9600)
    await server.serve_forever(background=True)
    return server


async def stop_rtu_server(server: ModbusSerialServer) -> None:
    await server.shutdown()  # type: ignore[no-untyped-call]  # pymodbus 3.16 lacks the hint


def rtu_client(port: str) -> AsyncModbusSerialClient:
    return AsyncModbusSerialClient(
        port,
        framer=FramerType.RTU,
        baudrate=9600,
        bytesize=8,
        parity="N",
        stopbits=1,
        timeout=0.5,
        retries=0,
        reconnect_delay=0.1,
    )


# --------------------------------------------------------------------------------------------
# mosquitto


def test_mosquitto_delivers_retained_message_to_later_subscriber(mosquitto: Broker) -> None:
    with mqtt_probe(mosquitto, "lamp-1") as publisher:
        reason = publisher.publish_and_ack("streetlight/lamp-1/status", b"online", retain=True)
        assert reason.value == 16  # "No matching subscribers": accepted, nobody listening yet

    with mqtt_probe(mosquitto, "fixture-test-ops") as subscriber:
        subscriber.client.subscribe("streetlight/+/status", qos=1)
        message = subscriber.messages.get(timeout=WAIT_S)
    threads = [thread.name for thread in threading.enumerate()]
    assert "paho-mqtt-client-fixture-test-ops" not in threads  # close() ended the network thread

    assert (message.topic, message.payload, message.retain) == (
        "streetlight/lamp-1/status",
        b"online",
        True,
    )
    assert mosquitto.host == "127.0.0.1"
    log = mosquitto.log_text()  # written although the tmp dir is private (run as root here)
    assert "mosquitto version 2" in log
    assert "New client connected from 127.0.0.1" in log and " as lamp-1 " in log


def test_mosquitto_stop_and_start_on_same_port(mosquitto: Broker) -> None:
    port = mosquitto.port
    probe = MqttProbe(mosquitto, "lamp-1")
    probe.connect()
    try:
        assert probe.publish_and_ack("streetlight/lamp-1/status", b"online", retain=True)
        mosquitto.stop()
        assert not mosquitto.is_running()
        probe.disconnects.get(timeout=WAIT_S)  # the connected client notices the broker is gone
    finally:
        probe.close()

    with pytest.raises(ConnectionRefusedError):
        MqttProbe(mosquitto, "lamp-2").connect()

    mosquitto.start()  # same port although the old connection's socket may be in TIME_WAIT
    assert mosquitto.is_running() and mosquitto.port == port
    with mqtt_probe(mosquitto, "lamp-2") as again:
        again.client.subscribe("streetlight/#", qos=1)
        assert again.publish_and_ack("streetlight/lamp-2/status", b"online") == 0  # delivered
        message = again.messages.get(timeout=WAIT_S)
    # persistence false: the retained "online" of lamp-1 did not survive the restart
    assert message.topic == "streetlight/lamp-2/status"
    assert mosquitto.log_text().count("mosquitto version 2.0") >= 2  # one log over both runs

    with pytest.raises(RuntimeError, match="already running"):
        mosquitto.start()


def test_mosquitto_factory_extra_config_reads_root_only_file(
    mosquitto_factory: MosquittoFactory, tmp_path: Path
) -> None:
    acl = tmp_path / "acl"
    acl.write_text("topic readwrite open/#\n")  # applies to anonymous clients
    acl.chmod(0o600)  # like a password file or TLS key: owner only
    tmp_path.chmod(0o700)
    broker = mosquitto_factory([f"acl_file {acl}"])

    with mqtt_probe(broker, "lamp-1") as probe:
        assert probe.publish_and_ack("open/x", b"1").value == 16  # allowed, no subscriber
        assert probe.publish_and_ack("closed/x", b"1").value == 135  # Not authorized

    assert "Denied PUBLISH from lamp-1" in broker.log_text()
    assert stat.S_IMODE(acl.stat().st_mode) == 0o600


def test_mosquitto_config_layout(tmp_path: Path) -> None:
    text = mosquitto_config(
        1883, tmp_path, ["allow_anonymous false", "per_listener_settings true"]
    ).splitlines()
    assert text[1] == "per_listener_settings true"  # mosquitto wants it before other settings
    assert "listener 1883 127.0.0.1" in text and "persistence false" in text
    assert "allow_anonymous true" not in text
    assert text.index("listener 1883 127.0.0.1") < text.index("allow_anonymous false")
    assert ("user root" in text) == (os.geteuid() == 0)


# --------------------------------------------------------------------------------------------
# socat pty pair


def test_pty_pair_passes_bytes_both_ways(pty_pair: PtyPair) -> None:
    assert pty_pair.is_plugged()
    assert Path(pty_pair.a).is_symlink() and Path(pty_pair.b).is_symlink()
    assert all(device.startswith("/dev/pts/") for device in pty_pair.devices)
    assert_link_works(pty_pair)
    assert_link_works(pty_pair)  # closing and reopening the ports keeps the link working


def test_pty_pair_unplug_and_replug(pty_pair: PtyPair) -> None:
    a, b = pty_pair.a, pty_pair.b
    held = open_tty(a)  # an application that keeps its port open across the unplug
    try:
        pty_pair.unplug()
        assert not pty_pair.is_plugged()
        with pytest.raises(FileNotFoundError):
            open_tty(a)
        with pytest.raises(FileNotFoundError):
            open_tty(b)
        with pytest.raises(OSError) as excinfo:
            os.write(held, b"x")
        assert excinfo.value.errno == errno.EIO

        pty_pair.replug()
        assert pty_pair.is_plugged() and (pty_pair.a, pty_pair.b) == (a, b)
        assert_link_works(pty_pair)  # the same paths work again
        with pytest.raises(OSError):  # the port held open stays dead: reopen it
            os.write(held, b"x")
    finally:
        os.close(held)

    with pytest.raises(RuntimeError, match="already plugged"):
        pty_pair.replug()


async def test_modbus_rtu_round_trip_over_pty_pair(pty_pair: PtyPair) -> None:
    server = await start_rtu_server(pty_pair.a)
    client = rtu_client(pty_pair.b)
    try:
        assert await client.connect()
        holding = await client.read_holding_registers(0, count=2, device_id=1)
        assert not holding.isError() and holding.registers == [0x1234, 42]
        inputs = await client.read_input_registers(0, count=2, device_id=1)
        value = client.convert_from_registers(inputs.registers, client.DATATYPE.FLOAT32)
        assert value == 230.5
    finally:
        client.close()
        await stop_rtu_server(server)


async def test_modbus_rtu_client_recovers_after_replug(pty_pair: PtyPair) -> None:
    server = await start_rtu_server(pty_pair.a)
    client = rtu_client(pty_pair.b)
    try:
        assert await client.connect()
        assert (await client.read_holding_registers(0, count=1, device_id=1)).registers == [0x1234]
        with quiet_logger("pymodbus"):
            pty_pair.unplug()
            await wait_until(lambda: not client.connected)  # the client notices by itself
            with pytest.raises(ConnectionException):
                await client.read_holding_registers(0, count=1, device_id=1)

            pty_pair.replug()
            # pymodbus 3.16: a ModbusSerialServer never reopens its port after losing it,
            # so the simulated meter is restarted; the client reconnects on its own.
            await stop_rtu_server(server)
            server = await start_rtu_server(pty_pair.a)
            deadline = time.monotonic() + WAIT_S
            while True:
                try:
                    reply = await client.read_holding_registers(0, count=1, device_id=1)
                    break
                except ModbusException:
                    assert time.monotonic() < deadline, "client did not reconnect"
                    await asyncio.sleep(0.05)
        assert reply.registers == [0x1234]
    finally:
        client.close()
        await stop_rtu_server(server)


# --------------------------------------------------------------------------------------------
# gpiozero


def test_gpio_active_low_relay_leaves_pin_high(gpio_pins: MockFactory) -> None:
    global_factory = Device.pin_factory
    with OutputDevice(17, active_high=False, initial_value=False, pin_factory=gpio_pins) as relay:
        assert gpio_pins.pin(17).state == 1  # HIGH = relay off
        assert relay.value == 0
        relay.on()
        assert gpio_pins.pin(17).state == 0
    assert gpio_pins.pin(17).function == "input"  # close() releases the pin
    assert Device.pin_factory is global_factory  # the global factory was not touched


def test_gpio_pwm_duty(gpio_pins: MockFactory) -> None:
    with PWMOutputDevice(18, frequency=1000, initial_value=0, pin_factory=gpio_pins) as dimmer:
        dimmer.value = 0.42
        assert gpio_pins.pin(18).state == pytest.approx(0.42)
        assert gpio_pins.pin(18).frequency == 1000


def test_gpio_pins_are_fresh_per_test(gpio_pins: MockFactory) -> None:
    # the previous tests claimed pins 17 and 18 on their own factories; nothing carried over
    assert gpio_pins.pins == {}
    OutputDevice(17, pin_factory=gpio_pins)  # left open on purpose: teardown closes it


def test_release_mock_factory_closes_leftover_devices() -> None:
    factory = MockFactory(pin_class=MockPWMPin)
    relay = OutputDevice(17, active_high=False, initial_value=False, pin_factory=factory)
    dimmer = PWMOutputDevice(18, pin_factory=factory)
    dimmer.blink(on_time=0.01, off_time=0.01)  # a background thread
    blinker = dimmer._blink_thread
    pin17 = factory.pin(17)

    release_mock_factory(factory)

    assert relay.closed and dimmer.closed
    assert not blinker.is_alive()
    assert pin17.function == "input"
    assert factory.pins == {}
    with OutputDevice(17, pin_factory=factory):  # pin 17 can be claimed again
        pass


# --------------------------------------------------------------------------------------------
# clock


def test_clock_starts_at_10_in_bangkok(clock: ManualClock) -> None:
    assert clock.now() == datetime(2026, 11, 21, 3, 0, tzinfo=UTC) == CLOCK_START
    assert clock.now().utcoffset() == timedelta(0)


async def test_clock_wakes_sleeper_only_when_its_time_comes(clock: ManualClock) -> None:
    deadline = clock.now() + timedelta(seconds=60)
    woke_at: list[datetime] = []

    async def sleeper() -> None:
        await clock.sleep_until(deadline)
        woke_at.append(clock.now())

    task = asyncio.create_task(sleeper())
    await settle()
    assert clock.next_wakeup == deadline

    await clock.advance(59)
    assert not task.done() and woke_at == []

    await clock.advance(1)
    assert task.done() and woke_at == [deadline]
    assert clock.now() == CLOCK_START + timedelta(seconds=60)
    await task
