"""One unit's connection to its MQTT broker: paho-mqtt driven by the asyncio event loop.

paho's socket is watched by the event loop itself (paho's external-loop callbacks: the loop
calls `loop_read` when the socket is readable, `loop_write` when paho has bytes to send, and
`loop_misc` once a second for keepalive). A command therefore reaches the daemon and its state
leaves again without crossing a thread, which keeps command-to-state latency near a
millisecond. Only the blocking part of a connection (DNS, the TCP connect and the TLS
handshake; the last two bounded by `connect_timeout_s`, DNS by the resolver's own timeout) runs
in a worker thread, so an unreachable broker never holds up the loop that switches the lamps.

What this adds to paho:
- reconnection with exponential back-off and random jitter, so a fleet does not reconnect all
  at once after a broker restart;
- a CONNACK watchdog: a plain client on a TLS port otherwise waits silently for an answer that
  never comes;
- subscriptions remembered and made again on every connect;
- TCP_NODELAY on the socket, so a small reply does not wait ~40 ms for a delayed ACK;
- one log line per connection change, in plain words with the fix, never with the password.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from controller.errors import StreetlightError
from controller.logs import log_event
from controller.settings import MqttSettings

log = logging.getLogger(__name__)

# How many QoS 1 messages paho may hold while the broker is slow; beyond that they are dropped
# (and logged) rather than growing without bound on a 512 MB Pi. Each accepted command brings
# an Ack and a State per zone, so a unit allowed many commands a second needs a longer queue
# to confirm a whole burst: 10 messages per command of the limit, at least _MIN_QUEUED.
_MIN_QUEUED = 1000
_QUEUED_PER_COMMAND_S = 10
# A connection that lasted this long resets the reconnection back-off.
_STABLE_S = 60.0
# How long a clean stop waits for the broker to take the last messages (`offline`).
_FAREWELL_TIMEOUT_S = 2.0
# paho's keepalive and retry bookkeeping (`loop_misc`) wants a call about once a second.
_MISC_EVERY_S = 1.0


class MqttConfigError(StreetlightError):
    """The MQTT settings cannot be used (a missing certificate or password file)."""


@dataclass(frozen=True, slots=True)
class Message:
    """A message the broker delivered to us."""

    topic: str
    payload: bytes
    retain: bool = False
    response_topic: str | None = None
    correlation_data: bytes | None = None


@dataclass(frozen=True, slots=True)
class Publication:
    """A message to publish."""

    topic: str
    payload: str | bytes
    qos: int = 1
    retain: bool = False


class Backoff:
    """Reconnect delays: exponential, capped, each drawn at random from [min_s, cap].

    The randomness spreads a fleet's reconnections after a broker restart over the whole
    window instead of all units arriving in the same second.
    """

    def __init__(self, min_s: float, max_s: float, rng: random.Random | None = None) -> None:
        self.min_s = min_s
        self.max_s = max_s
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self.attempt = 0

    def next_delay(self) -> float:
        """The delay before the next attempt; each call widens the window until max_s."""
        cap = min(self.max_s, self.min_s * 2 ** (self.attempt + 1))
        self.attempt += 1
        return self._rng.uniform(self.min_s, cap)

    def reset(self) -> None:
        """Start again from the shortest delay (after a successful connect)."""
        self.attempt = 0


def send_at_once(client: paho.Client, userdata: Any, sock: Any) -> None:
    """An `on_socket_open` for any paho client: TCP_NODELAY, which paho does not set, so a
    small message is not held ~40 ms for the peer's delayed ACK."""
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def read_password(settings: MqttSettings) -> str | None:
    """The password from `mqtt.password_file` (first line, without the line end), or None."""
    if settings.password_file is None:
        return None
    try:
        text = settings.password_file.read_text(encoding="utf-8")
    except OSError as exc:
        raise MqttConfigError(
            f"cannot read mqtt.password_file {settings.password_file}: {exc.strerror or exc}; "
            "create it with the broker password on one line, readable by the streetlight user "
            "only (chmod 600)"
        ) from None
    lines = text.splitlines()
    if not lines or not lines[0]:
        raise MqttConfigError(
            f"mqtt.password_file {settings.password_file} is empty: put the broker password on "
            "its first line"
        )
    return lines[0]


def _check_tls_files(settings: MqttSettings) -> None:
    for key in ("tls_ca_file", "tls_cert_file", "tls_key_file"):
        path = getattr(settings, key)
        if path is not None and not path.is_file():
            raise MqttConfigError(
                f"mqtt.{key} {path} does not exist: copy the file there, or correct the path "
                "(relative paths start from the config file's folder)"
            )


class MqttLink:
    """A connection that keeps itself up: connects, reconnects, re-subscribes, publishes.

    Create it inside the running event loop, then `start()`; `stop()` ends it. `on_connected`
    and `on_message` are called on the event loop, never from inside paho.
    """

    def __init__(
        self,
        settings: MqttSettings,
        *,
        client_id: str,
        will: Publication,
        rng: random.Random | None = None,
    ) -> None:
        _check_tls_files(settings)
        password = read_password(settings)
        self.settings = settings
        self.client_id = client_id
        self.on_connected: Callable[[], None] | None = None
        self.on_message: Callable[[Message], None] | None = None
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._backoff = Backoff(settings.reconnect_min_s, settings.reconnect_max_s, rng)
        self._subscriptions: set[str] = set()
        self._pending: dict[int, asyncio.Future[bool]] = {}
        self._connected = False
        self._suback_due: int | None = None
        self._connected_at: float | None = None
        self._stopping = False
        self._started = False
        self._watchdog: asyncio.TimerHandle | None = None
        self._last_problem: str | None = None
        self._failures = 0
        # did the broker answer this connection, and did it refuse us?
        self._answered = False
        self._refused: str | None = None
        # while a worker thread opens the socket, publications wait here (see publish())
        self._connecting = False
        self._held: list[tuple[Publication, bytes | None, asyncio.Future[bool] | None]] = []
        self._socket: Any = None  # the socket the loop watches, None when closed
        self._closed = asyncio.Event()  # set when the current connection has ended
        self._retry_s = 0.0
        self._tasks: list[asyncio.Task[None]] = []
        self._attempt: asyncio.Task[None] | None = None
        self._dropped = 0  # messages dropped in a row because paho's queue was full
        self._stop_started = False
        self.v5 = settings.protocol == "5"

        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=paho.MQTTv5 if self.v5 else paho.MQTTv311,
            # else paho answers a 3.1.1 "unacceptable protocol" refusal by connecting again at
            # once, blocking, from inside loop_read on the event loop; the link retries itself
            reconnect_on_failure=False,
        )
        client.suppress_exceptions = True  # an exception in a callback must not kill the link
        client.connect_timeout = settings.connect_timeout_s
        client.max_queued_messages_set(
            max(_MIN_QUEUED, _QUEUED_PER_COMMAND_S * settings.max_commands_per_s)
        )
        if settings.username is not None:
            client.username_pw_set(settings.username, password)
        if settings.tls:
            try:
                client.tls_set(
                    ca_certs=str(settings.tls_ca_file) if settings.tls_ca_file else None,
                    certfile=str(settings.tls_cert_file) if settings.tls_cert_file else None,
                    keyfile=str(settings.tls_key_file) if settings.tls_key_file else None,
                )
            except (ssl.SSLError, OSError) as exc:
                raise MqttConfigError(
                    f"cannot load the TLS files of [mqtt]: {exc}; check that tls_ca_file is a "
                    "PEM certificate and that tls_cert_file and tls_key_file belong together"
                ) from None
        client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
        client.on_connect = self._paho_connect
        client.on_disconnect = self._paho_disconnect
        client.on_message = self._paho_message
        client.on_publish = self._paho_publish
        client.on_subscribe = self._paho_subscribe
        client.on_socket_open = self._paho_socket_open
        client.on_socket_close = self._paho_socket_close
        client.on_socket_register_write = self._paho_want_write
        client.on_socket_unregister_write = self._paho_written
        # stores where to connect; the connection itself is made by _keep_connected
        client.connect_async(settings.host, settings.port, keepalive=settings.keepalive_s)
        self._client = client

    # ---- the loop side ---------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True between a successful CONNACK and the next disconnection."""
        return self._connected

    @property
    def subscribed(self) -> bool:
        """True once connected and the broker has granted this connection's subscriptions."""
        return self._connected and self._suback_due is None

    def start(self) -> None:
        """Start connecting in the background; returns at once, never raises for the network."""
        if self._started:
            return
        self._started = True
        log_event(
            log,
            "mqtt_connecting",
            host=self.settings.host,
            port=self.settings.port,
            tls=self.settings.tls,
            client_id=self.client_id,
            protocol=self.settings.protocol,
        )
        self._tasks = [
            self._loop.create_task(self._keep_connected(), name="mqtt-connect"),
            self._loop.create_task(self._housekeeping(), name="mqtt-misc"),
        ]

    def subscribe(self, topics: set[str]) -> None:
        """Keep exactly `topics` subscribed (QoS 1), now if connected and after every connect."""
        added, removed = topics - self._subscriptions, self._subscriptions - topics
        self._subscriptions = set(topics)
        if self._connected:
            if removed:
                self._client.unsubscribe(sorted(removed))
            if added:
                self._client.subscribe([(topic, 1) for topic in sorted(added)])

    def publish(
        self,
        topic: str,
        payload: str | bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        correlation_data: bytes | None = None,
    ) -> asyncio.Future[bool] | None:
        """Hand a message to paho; for QoS 1, a future that turns True when the broker has it.

        Returns None for QoS 0, and when paho's queue is full (the message is dropped and
        logged). The future turns False if the broker refused the message (MQTT 5 reason
        code), and is cancelled when the link stops first. QoS 0 messages are dropped while
        not connected, as paho does.
        """
        publication = Publication(topic, payload, qos, retain)
        if not self._connecting:
            return self._hand_to_paho(publication, correlation_data)
        # a worker thread is opening the socket: a message handed to paho now could be queued
        # ahead of the CONNECT packet, so it waits for the attempt to end
        if qos == 0:
            return None
        future: asyncio.Future[bool] = self._loop.create_future()
        self._held.append((publication, correlation_data, future))
        return future

    def _hand_to_paho(
        self,
        publication: Publication,
        correlation_data: bytes | None,
        future: asyncio.Future[bool] | None = None,
    ) -> asyncio.Future[bool] | None:
        properties = None
        if correlation_data is not None and self.v5:
            properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            properties.CorrelationData = correlation_data
        topic = publication.topic
        try:
            info = self._client.publish(
                topic,
                publication.payload,
                qos=publication.qos,
                retain=publication.retain,
                properties=properties,
            )
        except ValueError as exc:  # a topic with wildcards, a payload too large
            log_event(log, "mqtt_publish_refused", level=logging.ERROR, topic=topic, error=str(exc))
            if future is not None:
                future.set_result(False)
            return None
        if info.rc == paho.MQTT_ERR_QUEUE_SIZE:
            self._dropped += 1
            # once when it starts, then every 100th: a long outage must not fill the SD card
            if self._dropped % 100 == 1:
                log_event(
                    log,
                    "mqtt_queue_full",
                    level=logging.WARNING,
                    topic=topic,
                    dropped=self._dropped,
                    problem="the broker takes messages slower than the unit makes them; "
                    "the newest are dropped until it catches up",
                )
            if future is not None:
                future.set_result(False)
            return None
        self._dropped = 0
        if publication.qos == 0:
            return None
        if future is None:
            future = self._loop.create_future()
        # race-free: the PUBACK is read on this loop, after this function returns
        self._pending[info.mid] = future
        return future

    async def stop(self, farewell: Sequence[Publication] = ()) -> None:
        """Publish `farewell` (waiting briefly for the broker), disconnect, close the socket."""
        if not self._started or self._stop_started:
            return
        self._stop_started = True
        if self._connected and farewell:
            waits = [
                f
                for p in farewell
                if (f := self.publish(p.topic, p.payload, qos=p.qos, retain=p.retain)) is not None
            ]
            if waits:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.gather(*waits), _FAREWELL_TIMEOUT_S)
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._attempt is not None and not self._attempt.done():
            # a connect in its worker thread cannot be cancelled: wait for it (TCP and TLS are
            # bounded by connect_timeout_s) so that its socket is closed here, not leaked; a
            # resolver that hangs longer is left to finish, and its socket closed then
            await asyncio.wait({self._attempt}, timeout=2 * self.settings.connect_timeout_s + 1)
            if not self._attempt.done():
                self._attempt.add_done_callback(lambda _: self._close_socket())
        if self._socket is not None:
            self._closed.clear()
            self._client.disconnect()  # DISCONNECT is written by the loop, then paho closes
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), _FAREWELL_TIMEOUT_S)
        self._close_socket()
        self._cancel_watchdog()
        self._connected = False
        for future in self._pending.values():
            future.cancel()
        self._pending.clear()
        for _, _, held in self._held:
            if held is not None:
                held.cancel()
        self._held.clear()
        log_event(log, "mqtt_stopped", host=self.settings.host, port=self.settings.port)

    async def _keep_connected(self) -> None:
        """Connect; when the connection ends, wait a back-off delay and connect again.

        Ends only by cancellation (stop()), which then waits for a connect in progress.
        """
        while True:
            self._closed.clear()
            self._attempt = self._loop.create_task(self._connect_once())
            await asyncio.shield(self._attempt)
            await self._closed.wait()
            await asyncio.sleep(self._retry_s)

    async def _connect_once(self) -> None:
        self._connecting = True
        try:
            await asyncio.to_thread(self._client.reconnect)
        except (OSError, ssl.SSLError, ValueError) as exc:
            self._close_socket()
            self._retry_later(self._unreachable(exc))
        except Exception as exc:  # a bug must not end the reconnecting for good
            log_event(log, "mqtt_connect_error", level=logging.ERROR, error=repr(exc))
            self._close_socket()
            self._retry_later(f"unexpected error while connecting ({exc!r})")
        finally:
            self._connecting = False
            self._release_held()

    def _release_held(self) -> None:
        held, self._held = self._held, []
        for publication, correlation_data, future in held:
            if future is None or not future.cancelled():
                self._hand_to_paho(publication, correlation_data, future)

    async def _housekeeping(self) -> None:
        """paho's keepalive pings and timeouts, once a second while a socket is open."""
        while True:
            await asyncio.sleep(_MISC_EVERY_S)
            if self._socket is not None and not self._connecting:
                self._guarded(self._client.loop_misc)

    def _unreachable(self, exc: BaseException) -> str:
        detail = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        if self.settings.tls:
            return (
                f"cannot reach the broker, or the TLS handshake failed ({detail}): check "
                "mqtt.host and mqtt.port, that the port uses TLS, and that mqtt.tls_ca_file is "
                "the CA that signed the broker's certificate"
            )
        return f"cannot reach the broker ({detail}): check mqtt.host and mqtt.port, and the network"

    def _close_socket(self) -> None:
        """Stop watching paho's socket and close it (paho opens a new one for a reconnect)."""
        sock = self._client.socket()
        if sock is None:
            sock, self._socket = self._socket, None
        self._unwatch(sock)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def _watch(self, sock: Any) -> None:
        self._socket = sock
        self._loop.add_reader(sock, self._readable)

    def _unwatch(self, sock: Any) -> None:
        if sock is None:
            return
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_reader(sock)
            self._loop.remove_writer(sock)
        if sock is self._socket:
            self._socket = None

    def _readable(self) -> None:
        self._guarded(self._read)

    def _read(self) -> None:
        client = self._client
        client.loop_read()
        # TLS decrypts whole records: a second packet may wait in the SSL buffer with nothing
        # left on the socket to wake the loop, so read until the buffer is empty
        for _ in range(1000):
            pending = getattr(client.socket(), "pending", None)
            if pending is None or pending() <= 0:
                break
            client.loop_read()

    def _writable(self) -> None:
        self._guarded(self._client.loop_write)

    def _guarded(self, step: Callable[[], object]) -> None:
        """Run one of paho's network steps; if it raises, end this connection and retry later
        (an exception escaping here would leave the link waiting for ever)."""
        try:
            step()
        except Exception as exc:
            log_event(log, "mqtt_network_error", level=logging.WARNING, error=repr(exc))
            self._close_socket()
            self._retry_later(f"network error ({exc})")

    def _connected_now(self) -> None:
        self._cancel_watchdog()
        if self._stopping:
            return
        self._connected = True
        # subscribed here, on the loop, so a change of topics cannot slip between paho's
        # CONNACK and this moment
        if self._subscriptions:
            _, mid = self._client.subscribe([(topic, 1) for topic in sorted(self._subscriptions)])
            self._suback_due = mid
        self._failures = 0
        self._last_problem = None
        log_event(log, "mqtt_connected", host=self.settings.host, port=self.settings.port)
        if self.on_connected is not None:
            try:
                self.on_connected()
            except Exception:
                log.exception("mqtt_on_connected_failed")

    def _lost(self, problem: str, retry_s: float) -> None:
        self._cancel_watchdog()
        was_connected, self._connected = self._connected, False
        if self._stopping:
            return
        self._failures += 1
        # one line when something changes, then one every 10 attempts: enough to see from
        # journalctl what is wrong, without filling the SD card during a long outage
        if was_connected or problem != self._last_problem or self._failures % 10 == 0:
            log_event(
                log,
                "mqtt_disconnected" if was_connected else "mqtt_connect_failed",
                level=logging.WARNING,
                host=self.settings.host,
                port=self.settings.port,
                problem=problem,
                attempts=self._failures,
                retry_in_s=round(retry_s, 1),
            )
        self._last_problem = problem

    def _arm_watchdog(self, sock: Any) -> None:
        self._cancel_watchdog()
        if not self._stopping:
            self._watchdog = self._loop.call_later(
                self.settings.connect_timeout_s, self._connect_timed_out, sock
            )

    def _cancel_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def _connect_timed_out(self, sock: Any) -> None:
        self._watchdog = None
        if self._connected or self._stopping:
            return
        hint = self._tls_hint()
        log_event(
            log,
            "mqtt_connect_timeout",
            level=logging.WARNING,
            host=self.settings.host,
            port=self.settings.port,
            timeout_s=self.settings.connect_timeout_s,
            problem=f"the broker accepted the connection but did not answer; {hint}",
        )
        # shut the socket down under paho: the loop sees it readable, paho reads the end of
        # the connection and reports it lost, and the link tries again after a back-off
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def _tls_hint(self) -> str:
        return (
            "is this a plain MQTT port? set mqtt.tls = false, or use the broker's TLS port"
            if self.settings.tls
            else "if the broker's port uses TLS (8883 usually), set mqtt.tls = true"
        )

    def _deliver(self, message: Message) -> None:
        if self.on_message is None or self._stopping:
            return
        try:
            self.on_message(message)
        except Exception:  # a handler bug must not lose the next message
            log.exception("mqtt_message_handler_failed topic=%s", message.topic)

    def _subacked(self, mid: int) -> None:
        if mid == self._suback_due:
            self._suback_due = None

    def _published(self, mid: int, failed: bool) -> None:
        future = self._pending.pop(mid, None)
        if future is not None and not future.done():
            future.set_result(not failed)

    def _retry_later(self, problem: str) -> None:
        """Draw the next delay before connecting again, and report why the connection ended."""
        # the back-off starts again only after a connection that lasted: one that the broker
        # drops at once (another unit with the same client id) must not reconnect every second
        if self._connected_at is not None and time.monotonic() - self._connected_at > _STABLE_S:
            self._backoff.reset()
        self._connected_at = None
        self._retry_s = self._backoff.next_delay()
        self._lost(problem, self._retry_s)
        self._closed.set()

    # ---- paho's callbacks ---------------------------------------------------------------------
    # All but the socket callbacks come from loop_read/loop_write/loop_misc on the loop thread;
    # the work is scheduled with call_soon so that it runs outside paho's internal locks. The
    # socket callbacks also come from the connecting worker thread.

    def _call(self, callback: Callable[..., None], *args: Any) -> None:
        if threading.get_ident() == self._loop_thread:
            self._loop.call_soon(callback, *args)
            return
        with contextlib.suppress(RuntimeError):  # the loop closed while a connect still ran
            self._loop.call_soon_threadsafe(callback, *args)

    def _paho_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._answered = False
        send_at_once(client, userdata, sock)
        self._call(self._watch, sock)
        self._call(self._arm_watchdog, sock)

    def _paho_socket_close(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        if threading.get_ident() == self._loop_thread:
            self._unwatch(sock)  # now: the descriptor is closed right after this returns
        else:
            self._call(self._unwatch, sock)

    def _paho_want_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        # now when on the loop: paho may unregister again before a deferred call would run,
        # and a writer registered after that would then spin
        if threading.get_ident() == self._loop_thread:
            self._add_writer(sock)
        else:
            self._call(self._add_writer, sock)

    def _add_writer(self, sock: Any) -> None:
        if sock is self._socket and sock.fileno() >= 0:
            self._loop.add_writer(sock, self._writable)

    def _paho_written(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        if threading.get_ident() == self._loop_thread:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_writer(sock)
        else:
            self._call(self._paho_written, client, userdata, sock)

    def _paho_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: Any,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._answered = True
        if reason_code.is_failure:
            # paho closes the socket next and calls on_disconnect: the refusal is reported there
            self._refused = _refusal(reason_code)
            return
        self._connected_at = time.monotonic()
        self._call(self._connected_now)

    def _paho_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: Any,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        refused, self._refused = self._refused, None
        if refused is not None:
            problem = refused
        elif not self._answered and str(reason_code) == "Protocol error":
            # paho's answer to a 3.1.1 CONNACK "unacceptable protocol version" (it calls no
            # on_connect for it)
            problem = (
                f"the broker refused MQTT {self.settings.protocol} (unacceptable protocol "
                "version): set mqtt.protocol to the version the broker speaks, 5 or 3.1.1"
            )
        elif not self._answered:
            problem = f"the broker closed the connection before answering; {self._tls_hint()}"
        elif str(reason_code) == "Session taken over":
            problem = (
                "the broker let another client take over this client id: two units share "
                f"{self.client_id!r}; give each unit its own unit.id (or mqtt.client_id)"
            )
        else:
            problem = f"connection lost ({reason_code})"
        self._call(self._retry_later, problem)

    def _paho_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        props = getattr(msg, "properties", None)
        response_topic = getattr(props, "ResponseTopic", None) if props is not None else None
        correlation = getattr(props, "CorrelationData", None) if props is not None else None
        message = Message(
            topic=msg.topic,
            payload=bytes(msg.payload),
            retain=bool(msg.retain),
            response_topic=response_topic or None,
            correlation_data=bytes(correlation) if correlation is not None else None,
        )
        self._call(self._deliver, message)

    def _paho_subscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        self._call(self._subacked, mid)

    def _paho_publish(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._call(self._published, mid, reason_code.is_failure)

    def __repr__(self) -> str:
        state = "connected" if self._connected else "not connected"
        return f"MqttLink({self.settings.host}:{self.settings.port}, {state})"


def _refusal(reason_code: ReasonCode) -> str:
    """What a CONNACK refusal means, and how to fix it."""
    text = str(reason_code)
    fixes = {
        "Bad user name or password": "check mqtt.username and the password in mqtt.password_file",
        "Not authorized": "the broker refuses this account or client id: check mqtt.username, "
        "the password file and the broker's access rules",
        "Unsupported protocol version": "the broker does not speak MQTT 5: "
        'set mqtt.protocol = "3.1.1"',
        "Client identifier not valid": "set mqtt.client_id to an id the broker accepts",
        "Server unavailable": "the broker is not ready: it will be tried again",
    }
    fix = fixes.get(text, "see the broker's log for why it refused the connection")
    return f"the broker refused the connection ({text}): {fix}"
