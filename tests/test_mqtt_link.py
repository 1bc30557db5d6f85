"""MqttLink against a real mosquitto: connect, subscribe, publish, TLS, passwords, reconnects, stop.

Nothing in paho is mocked. The test side is an `Operator` (a real paho client). Waits are
bounded `eventually`/`Operator.wait_for` polls for network events; no test sleeps otherwise.
Reconnect delays are shortened (reconnect_min_s 0.1, reconnect_max_s 1) so a broker restart
costs well under a second. The will is tested elsewhere (it needs a process that vanishes).
"""

from __future__ import annotations

import asyncio
import logging
import random
import selectors
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from controller.logs import JsonFormatter, LogfmtFormatter
from controller.mqtt_link import (
    Backoff,
    Message,
    MqttConfigError,
    MqttLink,
    Publication,
    read_password,
)
from controller.settings import MqttSettings
from tests.conftest import Broker, MosquittoFactory, eventually, free_port
from tests.mqtt_client import Operator
from tests.pki import TestPki, make_pki, password_config, tls_listener_config

LOGGER = "controller.mqtt_link"
WAIT_S = 5.0
# The shortest reconnect delays the settings allow: a retry comes 0.1-1 s after a failure.
FAST_RETRY: dict[str, Any] = {"reconnect_min_s": 0.1, "reconnect_max_s": 1.0}
# stop() waits this long at most for the broker to take the farewell (mqtt_link's constant).
FAREWELL_TIMEOUT_S = 2.0
# stop() may wait for a connect attempt in progress (bounded by connect_timeout_s).
PAHO_STOP_S = 1.0


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    """One throwaway PKI for the whole module."""
    return make_pki(tmp_path_factory.mktemp("pki"))


def settings_for(broker: Broker, **values: Any) -> MqttSettings:
    """MqttSettings for `broker` with fast retries; `values` override anything."""
    return MqttSettings(**{"host": broker.host, "port": broker.port, **FAST_RETRY, **values})


@dataclass
class Recorder:
    """What a link reported to its callbacks, and on which thread."""

    connects: int = 0
    connect_threads: set[int] = field(default_factory=set)
    messages: list[Message] = field(default_factory=list)
    message_threads: set[int] = field(default_factory=set)

    def attach(self, link: MqttLink) -> Recorder:
        """Set `link`'s on_connected and on_message to record into this."""
        link.on_connected = self._connected
        link.on_message = self._message
        return self

    def _connected(self) -> None:
        self.connects += 1
        self.connect_threads.add(threading.get_ident())

    def _message(self, message: Message) -> None:
        self.messages.append(message)
        self.message_threads.add(threading.get_ident())

    def on(self, topic: str) -> list[Message]:
        """The messages received on `topic`, oldest first."""
        return [m for m in self.messages if m.topic == topic]


class Links:
    """Makes MqttLinks; the fixture stops every one of them at teardown."""

    def __init__(self) -> None:
        self.made: list[MqttLink] = []

    def __call__(self, settings: MqttSettings, client_id: str | None = None) -> MqttLink:
        link = MqttLink(
            settings,
            client_id=client_id or f"link-test-{len(self.made)}",
            will=Publication("test/will", "gone"),
        )
        self.made.append(link)
        return link


@pytest.fixture
async def links(mosquitto_factory: MosquittoFactory) -> AsyncIterator[Links]:
    """A maker of links, stopped before any broker (it depends on the broker factory)."""
    made = Links()
    yield made
    for link in made.made:
        await link.stop()


class Operators:
    """Makes Operators with distinct client ids; the fixture closes them at teardown."""

    def __init__(self) -> None:
        self.made: list[Operator] = []

    def __call__(self, broker: Broker, topics: list[str]) -> Operator:
        op = Operator(broker.host, broker.port, topics, client_id=f"op-{len(self.made)}")
        self.made.append(op)
        return op


@pytest.fixture
def operators(mosquitto_factory: MosquittoFactory) -> Iterator[Operators]:
    """A maker of operators, closed before any broker stops."""
    made = Operators()
    yield made
    for op in made.made:
        op.close()


def events(caplog: pytest.LogCaptureFixture, event: str) -> list[dict[str, Any]]:
    """The fields of every `event` the link logged, oldest first."""
    return [
        dict(getattr(record, "streetlight_fields", {}))
        for record in caplog.records
        if record.name == LOGGER and record.getMessage() == event
    ]


def broker_logged(broker: Broker, text: str) -> int:
    """How many times the broker's log contains `text` so far."""
    return broker.log_text().count(text)


async def received(rec: Recorder, topic: str, what: str, count: int = 1) -> list[Message]:
    """Wait until `rec` holds `count` messages on `topic`; returns them."""
    await eventually(lambda: len(rec.on(topic)) >= count, what, WAIT_S)
    return rec.on(topic)


async def acked(future: asyncio.Future[bool] | None) -> bool:
    """The result of a QoS 1 publish's future, waited for with a bound."""
    assert future is not None, "a QoS 1 publish returned no future"
    return await asyncio.wait_for(future, WAIT_S)


# --------------------------------------------------------------------------------------------
# connect, subscribe, receive, publish


async def test_connects_subscribes_receives_and_publishes_on_the_loop_thread(
    mosquitto: Broker, links: Links, operators: Operators
) -> None:
    op = operators(mosquitto, ["t/out"])
    op.publish("t/in/retained", "before", retain=True)
    link = links(settings_for(mosquitto))
    rec = Recorder().attach(link)
    link.subscribe({"t/in/#"})
    assert not link.connected
    link.start()
    link.start()  # a second start does nothing

    await eventually(lambda: link.connected, "link connected", WAIT_S)
    assert rec.connects == 1
    # the retained message arrives once the subscription made on connect is in effect
    [retained] = await received(rec, "t/in/retained", "the retained message")
    assert (retained.payload, retained.retain) == (b"before", True)

    op.publish("t/in/live", "hello", response_topic="reply/x", correlation_data=b"c-1")
    [live] = await received(rec, "t/in/live", "the live message")
    assert live == Message(
        "t/in/live", b"hello", retain=False, response_topic="reply/x", correlation_data=b"c-1"
    )

    assert await acked(link.publish("t/out", "from-link", correlation_data=b"c-2")) is True
    seen = await op.wait_for("t/out")
    assert (seen.text, seen.correlation_data) == ("from-link", b"c-2")
    assert link.publish("t/out", "qos0", qos=0) is None
    assert (await op.wait_for("t/out", after=1)).text == "qos0"

    loop_thread = threading.get_ident()
    assert rec.connect_threads == {loop_thread}
    assert rec.message_threads == {loop_thread}

    sock = link._client.socket()  # the socket paho connected (public paho API)
    assert isinstance(sock, socket.socket)
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1


async def test_subscribe_while_connected_adds_and_removes_topics(
    mosquitto: Broker, links: Links, operators: Operators
) -> None:
    op = operators(mosquitto, ["t/unused"])
    link = links(settings_for(mosquitto))
    rec = Recorder().attach(link)
    link.subscribe({"t/a"})
    link.start()
    await eventually(lambda: link.connected, "link connected", WAIT_S)

    link.subscribe({"t/b"})  # t/a dropped, t/b added
    op.publish("t/b", "marker", retain=True)
    await received(rec, "t/b", "the retained marker on the new topic")
    op.publish("t/a", "not for us")
    op.publish("t/b", "for us")
    await received(rec, "t/b", "the live message on the new topic", count=2)
    assert rec.on("t/a") == []


async def test_messages_published_while_connecting_go_out_after_the_connect_in_order(
    mosquitto: Broker, links: Links, operators: Operators
) -> None:
    op = operators(mosquitto, ["t/early"])
    link = links(settings_for(mosquitto))
    link.start()
    await asyncio.sleep(0)  # the connect is now under way in its worker thread
    futures = [link.publish("t/early", str(n)) for n in range(20)]
    assert all(await asyncio.gather(*(acked(f) for f in futures)))
    await op.wait_for("t/early", after=19)
    assert [m.text for m in op.messages("t/early")] == [str(n) for n in range(20)]


async def test_a_full_queue_drops_the_newest_and_says_so_once_per_hundred(
    links: Links, caplog: pytest.LogCaptureFixture
) -> None:
    """With nobody listening, QoS 1 messages wait in paho's queue: 10 per command a second
    the unit allows, at least 1,000."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    link = links(MqttSettings(host="127.0.0.1", port=free_port(), **FAST_RETRY))
    link.start()
    results = [link.publish(f"t/q/{n}", "x") for n in range(1250)]
    assert all(r is not None for r in results[:1000])
    assert all(r is None for r in results[1000:])
    full = events(caplog, "mqtt_queue_full")
    assert [e["dropped"] for e in full] == [1, 101, 201]
    assert "dropped" in full[0]["problem"]
    roomy = links(
        MqttSettings(host="127.0.0.1", port=free_port(), max_commands_per_s=200, **FAST_RETRY)
    )
    assert all(roomy.publish(f"t/q/{n}", "x") is not None for n in range(2000))


async def test_messages_queued_while_down_go_out_and_leave_nothing_to_write(
    mosquitto: Broker, links: Links
) -> None:
    """paho resends queued messages on CONNACK and unregisters its writer at once: the link
    must not leave the loop watching for writability (it would spin at 100 % CPU)."""
    mosquitto.stop()
    link = links(settings_for(mosquitto))
    link.start()
    await eventually(lambda: link._attempt is not None and link._attempt.done(), "a failed try")
    futures = [link.publish("t/queued", str(n)) for n in range(5)]
    mosquitto.start()
    assert all(await asyncio.gather(*(acked(f) for f in futures)))  # the broker has them
    await asyncio.sleep(0)
    key = link._loop._selector.get_key(link._client.socket())  # type: ignore[attr-defined]
    assert key.events & selectors.EVENT_WRITE == 0, "still watching for writability"


async def test_a_3_1_1_protocol_refusal_is_retried_by_the_link_not_by_paho(
    links: Links, caplog: pytest.LogCaptureFixture
) -> None:
    """paho would answer it by connecting again at once, blocking, on the event loop."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    connections: list[int] = []

    async def refusing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        await reader.read(1024)  # the CONNECT
        writer.write(b"\x20\x02\x00\x01")  # CONNACK: unacceptable protocol version
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(refusing, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    link = links(MqttSettings(host="127.0.0.1", port=port, protocol="3.1.1", **FAST_RETRY))
    link.start()
    try:
        await eventually(lambda: len(connections) >= 2, "a second attempt", WAIT_S)
        failed = events(caplog, "mqtt_connect_failed")
        assert failed and "refused MQTT 3.1.1" in failed[0]["problem"]
        assert "mqtt.protocol" in failed[0]["problem"]
        assert not link.connected
    finally:
        await link.stop()
        server.close()


# --------------------------------------------------------------------------------------------
# TLS


async def test_mutual_tls_with_the_test_ca_connects(
    pki: TestPki,
    mosquitto_factory: MosquittoFactory,
    links: Links,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    broker = mosquitto_factory(tls_listener_config(pki, require_certificate=True))
    link = links(
        settings_for(
            broker,
            tls=True,
            tls_ca_file=pki.ca_cert,
            tls_cert_file=pki.client_cert,
            tls_key_file=pki.client_key,
        )
    )
    link.start()
    await eventually(lambda: link.connected, "TLS link connected", WAIT_S)
    assert await acked(link.publish("t/tls", "over tls")) is True
    [connecting] = events(caplog, "mqtt_connecting")
    assert connecting["tls"] is True
    assert events(caplog, "mqtt_connect_failed") == []


async def test_tls_delivers_every_message_of_a_burst(
    pki: TestPki, mosquitto_factory: MosquittoFactory, links: Links
) -> None:
    """TLS hands over whole records: packets left in the SSL buffer must still be read."""
    broker = mosquitto_factory(tls_listener_config(pki, require_certificate=True))
    tls: dict[str, Any] = {
        "tls": True,
        "tls_ca_file": pki.ca_cert,
        "tls_cert_file": pki.client_cert,
        "tls_key_file": pki.client_key,
    }
    sender, receiver = links(settings_for(broker, **tls)), links(settings_for(broker, **tls))
    rec = Recorder().attach(receiver)
    receiver.subscribe({"t/burst/#"})
    sender.start()
    receiver.start()
    await eventually(lambda: receiver.subscribed and sender.connected, "both connected", WAIT_S)
    futures = [sender.publish(f"t/burst/{n}", "x" * 40, qos=1) for n in range(300)]
    assert all(await asyncio.gather(*(acked(f) for f in futures)))
    await eventually(lambda: len(rec.messages) >= 300, "300 messages received", WAIT_S)
    assert sorted(int(m.topic.rsplit("/", 1)[1]) for m in rec.messages) == list(range(300))


async def test_tls_reads_every_packet_of_one_record(pki: TestPki, links: Links) -> None:
    """A broker may put several MQTT packets in one TLS record. After the first packet the
    rest waits in the SSL buffer, with nothing on the socket to wake the loop: the link must
    read on until the buffer is empty. A minimal TLS server sends CONNACK and three PUBLISH
    packets in one write (mosquitto writes one packet per record, so it cannot show this)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    connack = b"\x20\x02\x00\x00"  # MQTT 3.1.1, accepted

    def publish(topic: bytes, payload: bytes) -> bytes:
        body = len(topic).to_bytes(2, "big") + topic + payload
        return b"\x30" + bytes([len(body)]) + body  # QoS 0, short enough for 1 length byte

    async def broker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)  # the CONNECT
        writer.write(connack + b"".join(publish(b"t/one-record", b"%d" % n) for n in range(3)))
        await writer.drain()
        await reader.read()  # until the link disconnects
        writer.close()

    server = await asyncio.start_server(broker, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    link = links(
        MqttSettings(
            host="127.0.0.1", port=port, protocol="3.1.1", tls=True, tls_ca_file=pki.ca_cert
        )
    )
    rec = Recorder().attach(link)
    link.start()
    try:
        messages = await received(rec, "t/one-record", "three packets from one record", 3)
        assert [m.payload for m in messages] == [b"0", b"1", b"2"]
    finally:
        await link.stop()
        server.close()


async def test_tls_with_a_ca_that_did_not_sign_the_server_never_connects_and_keeps_trying(
    pki: TestPki,
    mosquitto_factory: MosquittoFactory,
    links: Links,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    broker = mosquitto_factory(tls_listener_config(pki, require_certificate=True))
    link = links(
        settings_for(
            broker,
            tls=True,
            tls_ca_file=pki.other_ca_cert,
            tls_cert_file=pki.client_cert,
            tls_key_file=pki.client_key,
        )
    )
    link.start()  # returns; the failure is the network's, not start()'s
    await eventually(
        lambda: bool(events(caplog, "mqtt_connect_failed")), "mqtt_connect_failed logged", WAIT_S
    )
    # each attempt makes the broker log the client's alert once
    await eventually(
        lambda: broker_logged(broker, "alert unknown ca") >= 3, "three handshakes tried", WAIT_S
    )
    assert not link.connected
    failed = events(caplog, "mqtt_connect_failed")
    assert failed[0]["port"] == broker.port
    assert failed[0]["problem"]
    assert events(caplog, "mqtt_connected") == []


# --------------------------------------------------------------------------------------------
# username and password


def password_settings(broker: Broker, tmp_path: Path, password: str) -> MqttSettings:
    path = tmp_path / "mqtt-password"
    path.write_text(password + "\n")
    path.chmod(0o600)
    return settings_for(broker, username="lamp-1", password_file=path)


async def test_the_right_password_connects(
    mosquitto_factory: MosquittoFactory, links: Links, tmp_path: Path
) -> None:
    broker = mosquitto_factory(password_config(tmp_path / "broker", {"lamp-1": "Right-pw-4711"}))
    link = links(password_settings(broker, tmp_path, "Right-pw-4711"))
    link.start()
    await eventually(lambda: link.connected, "link connected with the password", WAIT_S)
    assert await acked(link.publish("t/auth", "ok")) is True


async def test_a_wrong_password_is_refused_in_words_without_the_password(
    mosquitto_factory: MosquittoFactory,
    links: Links,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "Wrong-pw-0815-zz"
    broker = mosquitto_factory(password_config(tmp_path / "broker", {"lamp-1": "Right-pw-4711"}))
    link = links(password_settings(broker, tmp_path, wrong))
    link.start()

    def refused() -> list[dict[str, Any]]:
        return [e for e in events(caplog, "mqtt_connect_failed") if "refused" in e["problem"]]

    await eventually(lambda: bool(refused()), "the refusal logged", WAIT_S)
    await eventually(
        lambda: broker_logged(broker, "not authorised") >= 2,
        "a second attempt refused by the broker",
        WAIT_S,
    )
    assert not link.connected
    problem = refused()[0]["problem"]
    assert "the broker refused the connection" in problem
    assert "mqtt.username" in problem
    assert "password" in problem

    await link.stop()
    assert wrong not in caplog.text
    for record in caplog.records:
        for formatter in (LogfmtFormatter(), JsonFormatter()):
            assert wrong not in formatter.format(record), record.getMessage()


async def test_a_refusal_is_logged_once_per_change_not_once_per_attempt(
    mosquitto_factory: MosquittoFactory,
    links: Links,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    broker = mosquitto_factory(password_config(tmp_path / "broker", {"lamp-1": "Right-pw-4711"}))
    link = links(password_settings(broker, tmp_path, "Wrong-pw"))
    link.start()
    await eventually(
        lambda: broker_logged(broker, "not authorised") >= 3, "three refused attempts", WAIT_S
    )
    await eventually(
        lambda: bool(events(caplog, "mqtt_connect_failed")), "the refusal logged", WAIT_S
    )
    failed = events(caplog, "mqtt_connect_failed")
    # the same problem three times: one line (the next comes with the 10th attempt)
    assert [(e["attempts"], "refused" in e["problem"]) for e in failed] == [(1, True)]


# --------------------------------------------------------------------------------------------
# unusable settings


def test_read_password_takes_the_first_line(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_text("first line\nsecond line\n")
    settings = MqttSettings(username="u", password_file=path)
    assert read_password(settings) == "first line"
    assert read_password(MqttSettings()) is None


def test_a_missing_password_file_names_the_key(tmp_path: Path) -> None:
    settings = MqttSettings(username="u", password_file=tmp_path / "absent")
    with pytest.raises(MqttConfigError, match=r"cannot read mqtt\.password_file .*absent"):
        read_password(settings)


@pytest.mark.parametrize("content", ["", "\n", "\nsecret on the second line\n"])
def test_an_empty_password_file_names_the_key(tmp_path: Path, content: str) -> None:
    path = tmp_path / "pw"
    path.write_text(content)
    settings = MqttSettings(username="u", password_file=path)
    with pytest.raises(MqttConfigError, match=r"mqtt\.password_file .* is empty"):
        read_password(settings)


async def test_a_missing_password_file_stops_the_link_being_made(tmp_path: Path) -> None:
    settings = MqttSettings(username="u", password_file=tmp_path / "absent")
    with pytest.raises(MqttConfigError, match=r"mqtt\.password_file"):
        MqttLink(settings, client_id="x", will=Publication("t/will", "gone"))


@pytest.mark.parametrize("key", ["tls_ca_file", "tls_cert_file"])
async def test_a_missing_tls_file_names_the_key(pki: TestPki, tmp_path: Path, key: str) -> None:
    files: dict[str, Any] = {
        "tls_ca_file": pki.ca_cert,
        "tls_cert_file": pki.client_cert,
        "tls_key_file": pki.client_key,
        key: tmp_path / "absent.pem",
    }
    settings = MqttSettings(tls=True, **files)
    with pytest.raises(MqttConfigError, match=rf"mqtt\.{key} .*absent\.pem does not exist"):
        MqttLink(settings, client_id="x", will=Publication("t/will", "gone"))


async def test_a_tls_file_that_is_no_certificate_is_a_config_error(tmp_path: Path) -> None:
    not_pem = tmp_path / "ca.crt"
    not_pem.write_text("this is not a certificate\n")
    settings = MqttSettings(tls=True, tls_ca_file=not_pem)
    with pytest.raises(MqttConfigError, match="cannot load the TLS files"):
        MqttLink(settings, client_id="x", will=Publication("t/will", "gone"))


# --------------------------------------------------------------------------------------------
# the CONNACK watchdog


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A 127.0.0.1 port that accepts TCP connections and never answers (a stalled broker)."""
    holding: list[asyncio.Task[Any]] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            holding.append(task)
        try:
            await reader.read()  # until the client gives up
        finally:
            writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port: int = server.sockets[0].getsockname()[1]
    yield port
    server.close()
    for task in holding:
        task.cancel()
    await asyncio.gather(*holding, return_exceptions=True)
    await server.wait_closed()


async def test_the_watchdog_ends_a_connection_without_connack_and_retries(
    silent_port: int, links: Links, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    settings = MqttSettings(host="127.0.0.1", port=silent_port, connect_timeout_s=0.3, **FAST_RETRY)
    link = links(settings)
    link.start()
    await eventually(
        lambda: len(events(caplog, "mqtt_connect_timeout")) >= 2,
        "two connect timeouts (a retry after the first)",
        WAIT_S,
    )
    assert not link.connected
    timeout = events(caplog, "mqtt_connect_timeout")[0]
    assert timeout["timeout_s"] == 0.3
    assert "accepted the connection but did not answer" in timeout["problem"]
    assert "set mqtt.tls = true" in timeout["problem"]


async def test_stop_during_a_tls_handshake_waits_for_it_and_closes_the_socket(
    pki: TestPki, silent_port: int, links: Links
) -> None:
    settings = MqttSettings(
        host="127.0.0.1",
        port=silent_port,
        tls=True,
        tls_ca_file=pki.ca_cert,
        connect_timeout_s=0.5,
        **FAST_RETRY,
    )
    link = links(settings)
    link.start()
    await asyncio.sleep(0.1)  # the handshake now waits in the worker thread
    started = time.monotonic()
    await link.stop()
    assert time.monotonic() - started < 0.5 + 1.0
    assert link._client.socket() is None  # nothing left open (public paho API)
    assert not link.connected


async def test_a_plain_link_on_a_tls_port_never_connects_and_keeps_trying(
    pki: TestPki,
    mosquitto_factory: MosquittoFactory,
    links: Links,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """mosquitto 2.0.11 with OpenSSL 3 does not hang here: it drops the connection at once."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    broker = mosquitto_factory(tls_listener_config(pki, require_certificate=False))
    link = links(settings_for(broker, connect_timeout_s=0.3))
    link.start()
    await eventually(
        lambda: broker_logged(broker, "wrong version number") >= 2, "a second attempt", WAIT_S
    )
    await eventually(
        lambda: bool(events(caplog, "mqtt_connect_failed")), "mqtt_connect_failed logged", WAIT_S
    )
    assert not link.connected


async def test_a_plain_link_on_a_tls_port_says_to_set_mqtt_tls(
    pki: TestPki,
    mosquitto_factory: MosquittoFactory,
    links: Links,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    broker = mosquitto_factory(tls_listener_config(pki, require_certificate=False))
    link = links(settings_for(broker, connect_timeout_s=0.3))
    link.start()
    await eventually(
        lambda: bool(
            events(caplog, "mqtt_connect_failed") + events(caplog, "mqtt_connect_timeout")
        ),
        "the failure logged",
        WAIT_S,
    )
    problems = [
        e["problem"]
        for e in events(caplog, "mqtt_connect_failed") + events(caplog, "mqtt_connect_timeout")
    ]
    assert all("mqtt.tls" in problem for problem in problems), problems


# --------------------------------------------------------------------------------------------
# broker restarts


async def test_reconnects_and_subscribes_again_after_a_broker_restart(
    mosquitto: Broker, links: Links, operators: Operators, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    link = links(settings_for(mosquitto))
    rec = Recorder().attach(link)
    link.subscribe({"t/in"})
    link.start()
    await eventually(lambda: link.connected, "link connected", WAIT_S)
    assert rec.connects == 1

    mosquitto.stop()
    await eventually(lambda: not link.connected, "link noticed the broker gone", WAIT_S)
    [lost] = events(caplog, "mqtt_disconnected")
    assert "connection lost" in lost["problem"]

    mosquitto.start()
    await eventually(lambda: link.connected, "link connected again", WAIT_S)
    assert rec.connects == 2
    assert len(events(caplog, "mqtt_connected")) == 2

    # the broker forgot everything: only a subscription made again delivers these
    op = operators(mosquitto, ["t/out"])
    op.publish("t/in", "marker", retain=True)
    await received(rec, "t/in", "the retained marker after the restart")
    op.publish("t/in", "after the restart")
    messages = await received(rec, "t/in", "a live message after the restart", count=2)
    assert [m.payload for m in messages] == [b"marker", b"after the restart"]
    assert await acked(link.publish("t/out", "back")) is True
    assert (await op.wait_for("t/out")).text == "back"


# --------------------------------------------------------------------------------------------
# MQTT 3.1.1


async def test_mqtt_3_1_1_exchanges_messages_and_ignores_correlation_data(
    mosquitto: Broker, links: Links, operators: Operators
) -> None:
    op = operators(mosquitto, ["t/out"])
    link = links(settings_for(mosquitto, protocol="3.1.1"))
    assert not link.v5
    rec = Recorder().attach(link)
    link.subscribe({"t/in"})
    link.start()
    await eventually(lambda: link.connected, "3.1.1 link connected", WAIT_S)

    assert await acked(link.publish("t/out", "v3", correlation_data=b"dropped")) is True
    seen = await op.wait_for("t/out")
    assert (seen.text, seen.correlation_data) == ("v3", None)

    op.publish("t/in", "marker", retain=True)
    await received(rec, "t/in", "the retained marker")
    op.publish("t/in", "to v3", response_topic="reply/x", correlation_data=b"c-3")
    [_, live] = await received(rec, "t/in", "the live message", count=2)
    assert live == Message("t/in", b"to v3")  # MQTT 3.1.1 carries no properties


# --------------------------------------------------------------------------------------------
# a failing handler


async def test_an_exception_in_on_message_does_not_stop_the_link(
    mosquitto: Broker, links: Links, operators: Operators, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    op = operators(mosquitto, ["t/unused"])
    link = links(settings_for(mosquitto))
    seen: list[bytes] = []

    def handler(message: Message) -> None:
        seen.append(message.payload)
        if message.payload == b"boom":
            raise RuntimeError("handler bug")

    link.on_message = handler
    link.subscribe({"t/in"})
    link.start()
    await eventually(lambda: link.connected, "link connected", WAIT_S)
    op.publish("t/in", "boom", retain=True)
    await eventually(lambda: seen == [b"boom"], "the failing message handled", WAIT_S)
    op.publish("t/in", "next")
    await eventually(lambda: seen == [b"boom", b"next"], "the next message", WAIT_S)
    assert link.connected
    failures = [r for r in caplog.records if r.getMessage().startswith("mqtt_message_handler")]
    assert len(failures) == 1
    assert failures[0].exc_info is not None
    assert "handler bug" in str(failures[0].exc_info[1])


# --------------------------------------------------------------------------------------------
# stop and farewell


async def test_stop_publishes_the_farewell_before_disconnecting(
    mosquitto: Broker, links: Links, operators: Operators, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    op = operators(mosquitto, ["unit/status"])
    link = links(settings_for(mosquitto))
    link.start()
    await eventually(lambda: link.connected, "link connected", WAIT_S)
    pending = link.publish("t/nobody", "x")

    await link.stop([Publication("unit/status", "offline", retain=True)])
    assert not link.connected
    assert events(caplog, "mqtt_stopped")
    assert pending is not None and pending.done()
    seen = await op.wait_for("unit/status")
    assert seen.text == "offline"
    # retained: someone who subscribes later still sees the unit offline
    late = operators(mosquitto, ["unit/status"])
    late_seen = await late.wait_for("unit/status")
    assert (late_seen.text, late_seen.retain) == ("offline", True)
    await link.stop()  # a second stop does nothing


async def test_stop_returns_soon_when_the_broker_is_already_down(
    mosquitto: Broker, links: Links
) -> None:
    link = links(settings_for(mosquitto))
    link.start()
    await eventually(lambda: link.connected, "link connected", WAIT_S)
    mosquitto.stop()  # the link has not been told yet: the farewell is still tried
    started = time.monotonic()
    await link.stop([Publication("unit/status", "offline", retain=True)])
    elapsed = time.monotonic() - started
    assert elapsed < FAREWELL_TIMEOUT_S + PAHO_STOP_S + 1.0, elapsed
    assert not link.connected


async def test_stop_before_start_does_nothing(mosquitto: Broker, links: Links) -> None:
    link = links(settings_for(mosquitto))
    await link.stop([Publication("unit/status", "offline")])
    assert not link.connected


# --------------------------------------------------------------------------------------------
# back-off


def draws(backoff: Backoff, count: int) -> list[float]:
    return [backoff.next_delay() for _ in range(count)]


def test_backoff_delays_lie_in_a_window_that_doubles_up_to_the_cap() -> None:
    min_s, max_s = 0.5, 10.0
    for seed in range(50):
        delays = draws(Backoff(min_s, max_s, random.Random(seed)), 12)
        for n, delay in enumerate(delays):
            assert min_s <= delay <= min(max_s, min_s * 2 ** (n + 1)), (seed, n, delay)


def test_backoff_delays_grow_and_are_capped() -> None:
    min_s, max_s = 1.0, 8.0
    runs = [draws(Backoff(min_s, max_s, random.Random(seed)), 10) for seed in range(200)]
    means = [sum(run[n] for run in runs) / len(runs) for n in range(10)]
    # the window [1, 2], [1, 4], [1, 8], [1, 8], ...: its mean 1.5, 2.5, 4.5, 4.5, ...
    assert means[0] < means[1] < means[2]
    assert means[0] == pytest.approx(1.5, abs=0.1)
    assert means[2] == pytest.approx(4.5, abs=0.5)
    for n, cap in enumerate([2.0, 4.0, 8.0]):  # each window is used up to its top
        assert max(run[n] for run in runs) > 0.95 * cap
    late = [run[n] for run in runs for n in range(3, 10)]
    assert max(late) <= max_s
    assert max(late) > 0.95 * max_s  # the cap is reached, not just approached
    assert means[9] == pytest.approx(means[3], abs=0.6)  # no growth past the cap


def test_backoff_jitter_differs_between_units() -> None:
    first = draws(Backoff(1.0, 60.0, random.Random(1)), 8)
    second = draws(Backoff(1.0, 60.0, random.Random(2)), 8)
    assert first != second
    assert draws(Backoff(1.0, 60.0, random.Random(1)), 8) == first  # seeded: repeatable
    assert len(set(first)) == len(first)


def test_backoff_reset_starts_from_the_shortest_window() -> None:
    backoff = Backoff(1.0, 60.0, random.Random(7))
    draws(backoff, 6)
    assert backoff.attempt == 6
    backoff.reset()
    assert backoff.attempt == 0
    assert 1.0 <= backoff.next_delay() <= 2.0
    assert backoff.attempt == 1


def test_backoff_without_a_generator_still_draws_from_the_window() -> None:
    backoff = Backoff(0.1, 1.0)
    assert all(0.1 <= d <= 1.0 for d in draws(backoff, 20))
