"""The test PKI of tests/pki.py works with a real mosquitto: mutual TLS, wrong CA, passwords.

Clients are paho-mqtt 2.x, MQTT v5, driven with blocking `connect()` and `loop()` calls; every
wait is bounded by CONNECT_TIMEOUT_S.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from tests.conftest import Broker, MosquittoFactory, find_tool
from tests.pki import (
    CLIENT_CN,
    TestPki,
    make_pki,
    password_config,
    tls_listener_config,
    verify_cert,
)

CONNECT_TIMEOUT_S = 5.0
# CONNACK reason codes a broker may use to refuse credentials (mosquitto 2.0.11 sends 135).
REFUSED_CREDENTIALS = {"Bad user name or password", "Not authorized"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    """One PKI for the whole module (making one takes tens of milliseconds)."""
    return make_pki(tmp_path_factory.mktemp("pki"))


# --------------------------------------------------------------------------------------------
# a paho client that tries to connect once


@dataclass
class Attempt:
    """What happened when a client tried to connect.

    `error`: what `connect()` raised (TLS handshake failures surface here). `connack`: the
    CONNACK reason code. `lost`: the rc of the `loop()` call that found the connection gone
    before any CONNACK, and `log` paho's own log lines (they name the TLS alert).
    """

    error: OSError | None = None
    connack: ReasonCode | None = None
    lost: MQTTErrorCode | None = None
    log: list[str] = field(default_factory=list)

    @property
    def connected(self) -> bool:
        return self.connack is not None and not self.connack.is_failure


ClientMaker = Callable[..., mqtt.Client]


@pytest.fixture
def make_client() -> Iterator[ClientMaker]:
    """Makes MQTT v5 paho clients; each is disconnected and its socket closed at teardown."""
    clients: list[mqtt.Client] = []

    def make(client_id: str = "pki-test", **tls: Any) -> mqtt.Client:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        client.connect_timeout = CONNECT_TIMEOUT_S  # bounds the TCP connect and TLS handshake
        if tls:
            client.tls_set(**tls)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.disconnect()
        deadline = time.monotonic() + 1.0
        while client.socket() is not None and time.monotonic() < deadline:
            client.loop(0.01)
        sock = client.socket()
        if sock is not None:  # pragma: no cover - the broker did not let go in time
            sock.close()


def try_connect(client: mqtt.Client, broker: Broker, host: str | None = None) -> Attempt:
    """Connect `client` to `broker` and run its loop until a CONNACK or a lost connection.

    `host` defaults to `broker.host` (127.0.0.1); "localhost" tests the cert's DNS name.
    Fails the test when neither happens within CONNECT_TIMEOUT_S.
    """
    attempt = Attempt()

    def on_connect(
        _client: mqtt.Client, _userdata: Any, _flags: Any, reason_code: ReasonCode, _props: Any
    ) -> None:
        attempt.connack = reason_code

    client.on_connect = on_connect
    client.on_log = lambda _client, _userdata, _level, message: attempt.log.append(message)
    try:
        client.connect(host or broker.host, broker.port, keepalive=10)
    except OSError as exc:  # ssl.SSLError and ConnectionRefusedError are OSErrors
        attempt.error = exc
        _close_leaked_sockets(exc)
        return attempt
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while attempt.connack is None:
        rc = client.loop(timeout=0.05)
        if rc != mqtt.MQTT_ERR_SUCCESS:
            attempt.lost = rc
            break
        if time.monotonic() > deadline:
            pytest.fail(f"no CONNACK and no disconnect within {CONNECT_TIMEOUT_S} s: {attempt}")
    return attempt


def _close_leaked_sockets(exc: BaseException) -> None:
    """Close the sockets paho 2.2 leaves open when `connect()` fails in the TLS handshake.

    `Client._ssl_wrap_socket` does not close its socket when `do_handshake()` raises, so it
    lingers in the traceback's frames and is reported as a ResourceWarning when collected.
    """
    tb = exc.__traceback__
    while tb is not None:
        for value in tb.tb_frame.f_locals.values():
            if isinstance(value, socket.socket):
                value.close()
        tb = tb.tb_next


def wait_for_log(broker: Broker, text: str) -> None:
    """Wait (bounded) until the broker's log contains `text`."""
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while text not in broker.log_text():
        if time.monotonic() > deadline:
            pytest.fail(f"the broker did not log {text!r}:\n{broker.log_text()[-2000:]}")
        time.sleep(0.01)


def cert_text(cert: Path) -> str:
    """`openssl x509 -noout -text` of `cert`."""
    return subprocess.run(
        [find_tool("openssl"), "x509", "-noout", "-text", "-in", str(cert)],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout


# --------------------------------------------------------------------------------------------
# the PKI files


def test_make_pki_writes_strictly_valid_certs_and_private_keys(pki: TestPki) -> None:
    for key in (pki.ca_key, pki.server_key, pki.client_key):
        assert os.stat(key).st_mode & 0o777 == 0o600, key
    assert pki.client_cn == CLIENT_CN == "skn-001"

    ca = cert_text(pki.ca_cert)
    assert "CA:TRUE" in ca
    assert "Certificate Sign" in ca
    server = cert_text(pki.server_cert)
    assert "Subject: CN = localhost" in server
    assert "DNS:localhost, IP Address:127.0.0.1" in server
    assert "TLS Web Server Authentication" in server
    assert "CA:FALSE" in server
    assert "prime256v1" in server
    client = cert_text(pki.client_cert)
    assert "Subject: CN = skn-001" in client
    assert "TLS Web Client Authentication" in client

    # make_pki checked these already; here the negative cases: the wrong CA, the wrong purpose
    verify_cert(pki.ca_cert, pki.server_cert, purpose="sslserver")
    verify_cert(pki.ca_cert, pki.client_cert, purpose="sslclient")
    with pytest.raises(RuntimeError, match="unable to get local issuer certificate"):
        verify_cert(pki.other_ca_cert, pki.server_cert)
    with pytest.raises(RuntimeError, match="unsuitable certificate purpose"):
        verify_cert(pki.ca_cert, pki.client_cert, purpose="sslserver")


def test_python_strict_context_accepts_the_certs(pki: TestPki) -> None:
    """Python 3.13's default context sets VERIFY_X509_STRICT; the certs must pass it too."""
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    context.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    assert [cert["subject"] for cert in context.get_ca_certs()] == [
        ((("commonName", "Streetlight Test CA"),),)
    ]


def test_config_lines() -> None:
    a, b, c, d, e, f, g = (Path(f"/pki/{name}") for name in "abcdefg")
    fake = TestPki(a, b, c, d, e, f, g)
    assert tls_listener_config(fake, require_certificate=False) == [
        "cafile /pki/a",
        "certfile /pki/c",
        "keyfile /pki/d",
        "require_certificate false",
    ]
    assert tls_listener_config(fake, require_certificate=True, use_identity_as_username=True)[
        -2:
    ] == ["require_certificate true", "use_identity_as_username true"]
    with pytest.raises(ValueError, match="require_certificate"):
        tls_listener_config(fake, require_certificate=False, use_identity_as_username=True)


def test_password_file(tmp_path: Path) -> None:
    lines = password_config(tmp_path, {"lamp-1": "secret1", "ops": "opspw"})
    passwd = tmp_path / "passwd"
    assert lines == [f"password_file {passwd}", "allow_anonymous false"]
    assert os.stat(passwd).st_mode & 0o777 == 0o600
    entries = passwd.read_text().splitlines()
    assert [entry.split(":")[0] for entry in entries] == ["lamp-1", "ops"]
    assert "secret1" not in passwd.read_text()  # hashed

    password_config(tmp_path, {"ops": "new"})  # rewritten, not appended to
    assert [entry.split(":")[0] for entry in passwd.read_text().splitlines()] == ["ops"]
    with pytest.raises(ValueError, match="':'"):
        password_config(tmp_path, {"a:b": "x"})


# --------------------------------------------------------------------------------------------
# mutual TLS against mosquitto


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_client_cert_from_the_ca_connects(
    pki: TestPki, mosquitto_factory: MosquittoFactory, make_client: ClientMaker, host: str
) -> None:
    broker = mosquitto_factory(
        tls_listener_config(pki, require_certificate=True, use_identity_as_username=True)
    )
    client = make_client(
        ca_certs=str(pki.ca_cert), certfile=str(pki.client_cert), keyfile=str(pki.client_key)
    )
    attempt = try_connect(client, broker, host)
    assert attempt.connected, attempt
    # the broker took the client cert's CN as the username
    assert f"as pki-test (p5, c1, k10, u'{CLIENT_CN}')" in broker.log_text()


def test_strict_python_context_connects(
    pki: TestPki, mosquitto_factory: MosquittoFactory, make_client: ClientMaker
) -> None:
    """What the daemon will get on Python 3.13: create_default_context + VERIFY_X509_STRICT."""
    broker = mosquitto_factory(tls_listener_config(pki, require_certificate=True))
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    context.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    client = make_client()
    client.tls_set_context(context)
    attempt = try_connect(client, broker)
    assert attempt.connected, attempt


def test_client_without_cert_is_refused(
    pki: TestPki, mosquitto_factory: MosquittoFactory, make_client: ClientMaker
) -> None:
    broker = mosquitto_factory(tls_listener_config(pki, require_certificate=True))
    client = make_client(ca_certs=str(pki.ca_cert))
    attempt = try_connect(client, broker)
    # TLS 1.2 fails the handshake in connect(). With TLS 1.3 the client finishes its side of the
    # handshake first, sends CONNECT and then reads the server's "certificate required" alert
    # instead of a CONNACK, or (about 1 run in 40) just an EOF: the alert is not reliable, the
    # broker's log is.
    assert attempt.connack is None, attempt
    # loop() returns CONN_LOST after the alert, NO_CONN after the EOF
    assert attempt.error is not None or attempt.lost is not None, attempt
    wait_for_log(broker, "peer did not return a certificate")


def test_client_cert_optional_when_not_required(
    pki: TestPki, mosquitto_factory: MosquittoFactory, make_client: ClientMaker
) -> None:
    broker = mosquitto_factory(tls_listener_config(pki, require_certificate=False))
    attempt = try_connect(make_client(ca_certs=str(pki.ca_cert)), broker)
    assert attempt.connected, attempt


def test_other_ca_rejects_the_server_cert(
    pki: TestPki, mosquitto_factory: MosquittoFactory, make_client: ClientMaker
) -> None:
    broker = mosquitto_factory(tls_listener_config(pki, require_certificate=True))
    client = make_client(
        ca_certs=str(pki.other_ca_cert),
        certfile=str(pki.client_cert),
        keyfile=str(pki.client_key),
    )
    attempt = try_connect(client, broker)
    assert isinstance(attempt.error, ssl.SSLCertVerificationError), attempt
    # mosquitto sends its CA along with the server cert, hence "self-signed ... in chain"
    assert attempt.error.verify_message in {
        "self-signed certificate in certificate chain",
        "unable to get local issuer certificate",
    }
    assert attempt.connack is None


# --------------------------------------------------------------------------------------------
# passwords


@pytest.fixture
def password_broker(mosquitto_factory: MosquittoFactory, tmp_path: Path) -> Callable[..., Broker]:
    """Starts a broker whose only user is lamp-1 / secret1, plus `extra` config lines."""

    def start(*extra: str) -> Broker:
        return mosquitto_factory([*extra, *password_config(tmp_path, {"lamp-1": "secret1"})])

    return start


def test_right_password_connects(
    password_broker: Callable[..., Broker], make_client: ClientMaker
) -> None:
    broker = password_broker()
    client = make_client()
    client.username_pw_set("lamp-1", "secret1")
    attempt = try_connect(client, broker)
    assert attempt.connected, attempt


@pytest.mark.parametrize(
    ("username", "password"),
    [("lamp-1", "wrong"), ("lamp-2", "secret1"), ("lamp-1", None), (None, None)],
    ids=["wrong-password", "unknown-user", "no-password", "anonymous"],
)
def test_bad_credentials_are_refused(
    password_broker: Callable[..., Broker],
    make_client: ClientMaker,
    username: str | None,
    password: str | None,
) -> None:
    broker = password_broker()
    client = make_client()
    if username is not None:
        client.username_pw_set(username, password)
    attempt = try_connect(client, broker)
    assert attempt.connack is not None, attempt
    assert attempt.connack.is_failure
    assert str(attempt.connack) in REFUSED_CREDENTIALS, attempt


def test_password_over_tls(
    pki: TestPki, password_broker: Callable[..., Broker], make_client: ClientMaker
) -> None:
    """The production setup: server-authenticated TLS plus a password, no client cert."""
    broker = password_broker(*tls_listener_config(pki, require_certificate=False))
    good = make_client("good", ca_certs=str(pki.ca_cert))
    good.username_pw_set("lamp-1", "secret1")
    assert try_connect(good, broker).connected
    bad = make_client("bad", ca_certs=str(pki.ca_cert))
    bad.username_pw_set("lamp-1", "nope")
    attempt = try_connect(bad, broker)
    assert attempt.connack is not None, attempt
    assert str(attempt.connack) in REFUSED_CREDENTIALS
