"""sd_notify by hand: exact datagrams to a real socket, no-ops outside systemd, never raising."""

from __future__ import annotations

import logging
import os
import re
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.systemd_notify import Notifier


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket bound in tmp_path, as systemd's notify socket, and its address."""
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(5)
        yield sock, str(path)


def _received(sock: socket.socket) -> str:
    return sock.recv(4096).decode()


def _failures(caplog: pytest.LogCaptureFixture) -> int:
    return sum(record.getMessage() == "systemd_notify_failed" for record in caplog.records)


def test_each_message_arrives_exactly(notify_socket: tuple[socket.socket, str]) -> None:
    sock, address = notify_socket
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": address})
    assert notifier.enabled
    notifier.ready()
    assert _received(sock) == "READY=1"
    notifier.status("3 zones on, night profile")
    assert _received(sock) == "STATUS=3 zones on, night profile"
    notifier.watchdog()
    assert _received(sock) == "WATCHDOG=1"
    notifier.stopping()
    assert _received(sock) == "STOPPING=1"


def test_a_status_with_newlines_stays_one_line(notify_socket: tuple[socket.socket, str]) -> None:
    sock, address = notify_socket
    Notifier(address).status("fail-safe:\nclock not trusted")
    assert _received(sock) == "STATUS=fail-safe: clock not trusted"


def test_reloading_carries_the_monotonic_time(notify_socket: tuple[socket.socket, str]) -> None:
    sock, address = notify_socket
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    Notifier(address).reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    match = re.fullmatch(r"RELOADING=1\nMONOTONIC_USEC=(\d+)", _received(sock))
    assert match is not None
    assert before <= int(match[1]) <= after


def test_the_abstract_namespace() -> None:
    name = f"streetlight-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        Notifier.from_environment({"NOTIFY_SOCKET": "@" + name}).ready()
        assert _received(sock) == "READY=1"


@pytest.mark.parametrize("environ", [{}, {"NOTIFY_SOCKET": ""}])
def test_outside_systemd_everything_is_a_no_op(
    environ: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier.from_environment(environ)
    assert not notifier.enabled
    notifier.ready()
    notifier.reloading()
    notifier.status("anything")
    notifier.watchdog()
    notifier.stopping()
    assert notifier.watchdog_interval() is None
    assert caplog.records == []


def test_an_unsupported_address_disables_the_notifier(caplog: pytest.LogCaptureFixture) -> None:
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": "vsock:2:1234"})
    assert not notifier.enabled
    notifier.ready()
    assert [r.getMessage() for r in caplog.records] == ["systemd_notify_unsupported"]


@pytest.mark.parametrize(
    ("watchdog_usec", "watchdog_pid", "expected"),
    [
        ("30000000", None, 15.0),
        ("30000000", "self", 15.0),
        ("30000000", "1", None),  # systemd watches another process (ours is never pid 1 here)
        ("500000", None, 0.25),
        (None, None, None),
        ("", None, None),
        ("0", None, None),
        ("-5", None, None),
        ("thirty", None, None),
    ],
)
def test_watchdog_interval_from_the_environment(
    watchdog_usec: str | None, watchdog_pid: str | None, expected: float | None
) -> None:
    environ = {"NOTIFY_SOCKET": "/run/systemd/notify"}
    if watchdog_usec is not None:
        environ["WATCHDOG_USEC"] = watchdog_usec
    if watchdog_pid is not None:
        environ["WATCHDOG_PID"] = str(os.getpid()) if watchdog_pid == "self" else watchdog_pid
    assert Notifier.from_environment(environ).watchdog_interval() == expected


def test_a_bad_watchdog_value_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    Notifier.from_environment({"WATCHDOG_USEC": "thirty"})
    [record] = caplog.records
    assert record.getMessage() == "systemd_watchdog_ignored"


def test_the_default_environment_is_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.setenv("WATCHDOG_USEC", "8000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    notifier = Notifier.from_environment()
    assert not notifier.enabled
    assert notifier.watchdog_interval() == 4.0


def test_a_vanished_socket_is_logged_once_and_never_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
    path.unlink()  # systemd went away
    notifier = Notifier(str(path))
    notifier.ready()
    notifier.watchdog()
    notifier.status("still running")
    assert _failures(caplog) == 1
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert getattr(record, "streetlight_fields", {})["socket"] == str(path)

    # the socket comes back: messages flow again, and a later failure is reported afresh
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(5)
        notifier.watchdog()
        assert _received(sock) == "WATCHDOG=1"
    path.unlink()
    notifier.watchdog()
    assert _failures(caplog) == 2


def test_a_socket_left_behind_by_a_dead_listener_is_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
    # the file is still there but nobody listens: ECONNREFUSED
    Notifier(str(path)).ready()
    assert _failures(caplog) == 1
