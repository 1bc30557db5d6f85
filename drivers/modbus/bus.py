"""One Modbus line, RS-485 through a serial adapter or TCP, shared by the devices on it.

Devices on one line take turns: one request at a time under a lock, with a quiet gap between
frames. Each request waits at most `timeout_s` for an answer and is tried `retries` more times.
A device that fails is left alone (requests to it fail at once, using no bus time) for a
back-off that doubles from about 1 s up to `backoff_max_s`, then tried once; so a dead device
never stalls the others. A lost adapter or connection becomes the bus's fault, and the bus opens
it again by itself (with the same back-off) when it is back.

A failing request takes at most timeout_s x (retries + 1), plus the frame gaps, plus one more
timeout_s when the line had to be opened first. pymodbus itself neither retries nor reconnects
here (retries=0, reconnect_delay=0): it would not reopen a serial adapter that came back.

Every failure raises `DeviceFault` with a sentence that says what is wrong and how to fix it.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, NoReturn

from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient, ModbusBaseClient
from pymodbus.exceptions import ConnectionException, ModbusException
from pymodbus.pdu import ModbusPDU

from drivers.errors import DeviceFault, HardwareConfigError

_FIRST_BACKOFF_S = 1.0
_JITTER = 0.25  # a back-off is drawn from 75-100 % of its nominal length
# pymodbus drops a TCP connection after a few unanswered requests in a row; one dead device
# behind a gateway must not cut off the others, so the bus decides that itself: after this many
# failed requests in a row with no answer from anyone, it opens a fresh connection.
_PYMODBUS_NEVER_DROPS = 1_000_000
_TCP_SILENT_BEFORE_RECONNECT = 3
# Margin on top of pymodbus's own timeout before the bus gives up on a request itself.
_SAFETY_S = 0.5

_EXCEPTION_MEANING: dict[int, str] = {
    1: "illegal function: the device does not support this request, so the device profile "
    "does not fit this device",
    2: "illegal data address: the device profile does not fit this device (check the model "
    "named in the config)",
    3: "illegal data value: the device refused the value; check the profile's channel "
    "settings (full_scale) against the datasheet",
    4: "device failure: the device reports an internal error; switch it off and on",
    5: "acknowledge: the device is still busy with an earlier command",
    6: "device busy: the device is busy with an earlier command",
    10: "gateway path unavailable: the gateway has no route to this device; check the "
    "gateway's serial settings",
    11: "the gateway's target device did not answer: check the device's Modbus address, its "
    "wiring to the gateway, its baud rate and its power",
}
# Exception codes that mean the device is not there: back off as for no answer.
_UNREACHABLE = {4, 10, 11}
# Exception codes worth asking again at once.
_BUSY = {5, 6}


@dataclass(frozen=True)
class RtuLink:
    """An RS-485 line through a serial adapter, e.g. /dev/serial/by-id/usb-FTDI...-port0."""

    port: str
    baudrate: int = 9600
    parity: str = "N"
    bytesize: int = 8
    stopbits: int = 1


@dataclass(frozen=True)
class TcpLink:
    """A Modbus TCP device, or an RS-485 gateway, on the network."""

    host: str
    port: int = 502


@dataclass(frozen=True)
class BusTiming:
    """How long to wait for answers and how hard to try; the same for every device on a bus."""

    timeout_s: float = 1.0
    retries: int = 2
    frame_gap_ms: int = 10
    backoff_max_s: float = 60.0

    def __post_init__(self) -> None:
        if not (self.timeout_s > 0 and self.retries >= 0 and self.frame_gap_ms >= 0):
            raise HardwareConfigError(
                "a Modbus bus needs timeout_s above 0, retries of 0 or more and frame_gap_ms of "
                f"0 or more, got {self.timeout_s}, {self.retries} and {self.frame_gap_ms}"
            )
        if not self.backoff_max_s > 0:
            raise HardwareConfigError(f"backoff_max_s must be above 0, got {self.backoff_max_s}")


@dataclass
class _DeviceState:
    fault: str | None = None
    failures: int = 0
    retry_at: float = 0.0


class ModbusBus:
    """One Modbus line and the pymodbus client that talks on it; devices share it by id.

    `monotonic` is the clock the back-off runs on (inject one in tests); the wait for an answer
    runs on real time. The connection is opened on the first request, not here.
    """

    def __init__(
        self,
        name: str,
        link: RtuLink | TcpLink,
        timing: BusTiming = BusTiming(),
        *,
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.link = link
        self.timing = timing
        self._monotonic = monotonic
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._lock = asyncio.Lock()
        self._client: ModbusBaseClient | None = None
        self._devices: dict[int, _DeviceState] = {}
        self._bus_fault: str | None = None
        self._bus_failures = 0
        self._bus_retry_at = 0.0
        self._quiet_until = 0.0
        self._received = 0  # bytes received during the current attempt
        self._silent_in_a_row = 0
        self._closed = False

    # ------------------------------------------------------------------------------------
    # public

    def describe(self) -> str:
        """The bus in words: "bus rs485 (/dev/ttyUSB0, 9600 8N1)" or "bus gw (10.0.0.5:502)"."""
        link = self.link
        if isinstance(link, RtuLink):
            frame = f"{link.bytesize}{link.parity}{link.stopbits}"
            return f"bus {self.name} ({link.port}, {link.baudrate} {frame})"
        return f"bus {self.name} ({link.host}:{link.port})"

    @property
    def fault(self) -> str | None:
        """None while the line itself works, else what is wrong with it (adapter, connection)."""
        return self._bus_fault

    def device_fault(self, device_id: int) -> str | None:
        """What keeps device `device_id` from working (the bus's fault first), or None."""
        if self._bus_fault is not None:
            return self._bus_fault
        state = self._devices.get(device_id)
        return state.fault if state else None

    async def read_registers(
        self, device_id: int, function: Literal["holding", "input"], address: int, count: int
    ) -> list[int]:
        """`count` registers from `address` (function 3 or 4); DeviceFault when that fails."""
        _check_span(address, count, 125)
        what = f"{function} registers {address}-{address + count - 1}"

        def call(client: ModbusBaseClient) -> Awaitable[ModbusPDU]:
            if function == "holding":
                return client.read_holding_registers(address, count=count, device_id=device_id)
            if function == "input":
                return client.read_input_registers(address, count=count, device_id=device_id)
            raise ValueError(f'function is "holding" or "input", got {function!r}')

        response = await self._request(device_id, what, call, lambda r: len(r.registers) == count)
        return list(response.registers[:count])

    async def read_bits(
        self, device_id: int, function: Literal["coil", "discrete"], address: int, count: int
    ) -> list[bool]:
        """`count` coils or discrete inputs from `address` (function 1 or 2)."""
        _check_span(address, count, 2000)
        what = f"{function}s {address}-{address + count - 1}"

        def call(client: ModbusBaseClient) -> Awaitable[ModbusPDU]:
            if function == "coil":
                return client.read_coils(address, count=count, device_id=device_id)
            if function == "discrete":
                return client.read_discrete_inputs(address, count=count, device_id=device_id)
            raise ValueError(f'function is "coil" or "discrete", got {function!r}')

        response = await self._request(device_id, what, call, lambda r: len(r.bits) >= count)
        return [bool(b) for b in response.bits[:count]]

    async def write_coil(self, device_id: int, address: int, value: bool) -> None:
        """Switch coil `address` on or off (function 5)."""
        _check_span(address, 1, 1)
        await self._request(
            device_id,
            f"coil {address} ({'on' if value else 'off'})",
            lambda client: client.write_coil(address, bool(value), device_id=device_id),
            lambda r: True,
        )

    async def write_register(self, device_id: int, address: int, value: int) -> None:
        """Write `value` (0-65535) to holding register `address` (function 6)."""
        _check_span(address, 1, 1)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFF:
            raise ValueError(f"a register holds 0 to 65535, got {value!r}")
        await self._request(
            device_id,
            f"holding register {address} (= {value})",
            lambda client: client.write_register(address, value, device_id=device_id),
            lambda r: True,
        )

    async def close(self) -> None:
        """Close the line; later requests fail with DeviceFault. Safe to call more than once."""
        self._closed = True
        self._drop_client()

    # ------------------------------------------------------------------------------------
    # one request

    async def _request(
        self,
        device_id: int,
        what: str,
        call: Callable[[ModbusBaseClient], Awaitable[ModbusPDU]],
        complete: Callable[[ModbusPDU], bool],
    ) -> ModbusPDU:
        """Send one request to `device_id`, with retries; its answer, or DeviceFault."""
        self._refuse_while_backing_off(device_id)
        async with self._lock:
            self._refuse_while_backing_off(device_id)
            client = await self._connected_client()
            state = self._devices.setdefault(device_id, _DeviceState())
            # a device that is already faulty gets one try per back-off, not the full retries
            attempts = 1 if state.failures else self.timing.retries + 1
            problem = "silent"
            for attempt in range(attempts):
                await self._wait_quiet()
                self._received = 0
                try:
                    response = await asyncio.wait_for(
                        call(client), self.timing.timeout_s + _SAFETY_S
                    )
                except ConnectionException:
                    self._lost_connection()
                except (ModbusException, TimeoutError, OSError):
                    self._frame_done()
                    if not client.connected:
                        self._lost_connection()
                    problem = "garbled" if self._received else "silent"
                    continue
                self._frame_done()
                self._silent_in_a_row = 0
                if response.isError():
                    code = response.exception_code
                    if code in _BUSY and attempt + 1 < attempts:
                        continue
                    message = self._exception_message(device_id, what, code)
                    self._device_failed(device_id, message, back_off=code in _UNREACHABLE)
                if not complete(response):
                    problem = "garbled"
                    continue
                self._devices[device_id] = _DeviceState()
                return response
            self._silent_in_a_row += 1
            if isinstance(self.link, TcpLink) and (
                self._silent_in_a_row >= _TCP_SILENT_BEFORE_RECONNECT
            ):
                # a half-open connection answers nothing: open a fresh one next time
                self._silent_in_a_row = 0
                self._drop_client()
            self._device_failed(device_id, self._no_answer_message(device_id, what, problem))

    def _refuse_while_backing_off(self, device_id: int) -> None:
        if self._closed:
            raise DeviceFault(f"{self.describe()} is closed")
        now = self._monotonic()
        if self._bus_fault is not None and now < self._bus_retry_at:
            raise DeviceFault(self._bus_fault)
        state = self._devices.get(device_id)
        if state is not None and state.fault is not None and now < state.retry_at:
            raise DeviceFault(state.fault)

    def _device_failed(self, device_id: int, message: str, back_off: bool = True) -> NoReturn:
        state = self._devices.setdefault(device_id, _DeviceState())
        state.fault = message
        if back_off:
            state.failures += 1
            state.retry_at = self._monotonic() + self._backoff_s(state.failures)
        else:
            state.failures, state.retry_at = 0, 0.0
        raise DeviceFault(message)

    def _backoff_s(self, failures: int) -> float:
        nominal = min(self.timing.backoff_max_s, _FIRST_BACKOFF_S * 2.0 ** min(failures - 1, 30))
        return nominal * self._rng.uniform(1 - _JITTER, 1.0)

    async def _wait_quiet(self) -> None:
        loop = asyncio.get_running_loop()
        delay = self._quiet_until - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)

    def _frame_done(self) -> None:
        loop = asyncio.get_running_loop()
        self._quiet_until = loop.time() + self.timing.frame_gap_ms / 1000

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        """pymodbus hook on every frame: counts bytes received, to tell noise from silence."""
        if not sending:
            self._received += len(data)
        return data

    # ------------------------------------------------------------------------------------
    # the connection

    async def _connected_client(self) -> ModbusBaseClient:
        """The open client, opening the adapter or connection first if needed."""
        if self._client is not None and self._client.connected:
            return self._client
        self._drop_client()
        link = self.link
        if isinstance(link, RtuLink) and _missing(link.port):
            self._bus_failed(
                f"serial adapter {link.port} is not there: check the USB cable, and that the "
                "bus's `port` names it (use its /dev/serial/by-id/ name)"
            )
        client = self._new_client()
        try:
            opened = await asyncio.wait_for(client.connect(), self.timing.timeout_s + _SAFETY_S)
        except (ModbusException, TimeoutError, OSError):
            opened = False
        if not opened:
            client.close()
            self._bus_failed(self._cannot_open_message())
        self._client = client
        self._bus_fault, self._bus_failures, self._bus_retry_at = None, 0, 0.0
        return client

    def _new_client(self) -> ModbusBaseClient:
        link, timing = self.link, self.timing
        client: ModbusBaseClient
        # reconnect_delay=0: pymodbus does not reopen by itself; the bus does, with back-off
        if isinstance(link, RtuLink):
            client = AsyncModbusSerialClient(
                link.port,
                framer=FramerType.RTU,
                baudrate=link.baudrate,
                bytesize=link.bytesize,
                parity=link.parity,
                stopbits=link.stopbits,
                name=self.name,
                reconnect_delay=0,
                timeout=timing.timeout_s,
                retries=0,
                trace_packet=self._trace_packet,
            )
        else:
            client = AsyncModbusTcpClient(
                link.host,
                port=link.port,
                name=self.name,
                reconnect_delay=0,
                timeout=timing.timeout_s,
                retries=0,
                trace_packet=self._trace_packet,
            )
        client.set_max_no_responses(_PYMODBUS_NEVER_DROPS)
        return client

    def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def _bus_failed(self, message: str) -> NoReturn:
        self._bus_fault = message
        self._bus_failures += 1
        self._bus_retry_at = self._monotonic() + self._backoff_s(self._bus_failures)
        raise DeviceFault(message)

    def _lost_connection(self) -> NoReturn:
        """The adapter or connection went away mid-request: the next request reopens it."""
        self._drop_client()
        self._frame_done()
        link = self.link
        if isinstance(link, RtuLink):
            message = f"serial adapter {link.port} stopped working: check the USB cable"
        else:
            message = (
                f"the connection to {link.host}:{link.port} was lost: check that the device or "
                "gateway is powered and on the network"
            )
        self._bus_fault, self._bus_retry_at = message, 0.0
        raise DeviceFault(message)

    # ------------------------------------------------------------------------------------
    # messages

    def _cannot_open_message(self) -> str:
        link = self.link
        if isinstance(link, RtuLink):
            if not os.access(link.port, os.R_OK | os.W_OK):
                return (
                    f"serial adapter {link.port} cannot be opened: the user running streetlight "
                    "may not use it (add that user to the dialout group)"
                )
            return (
                f"serial adapter {link.port} cannot be opened: check that no other program "
                "uses it, and unplug and replug it"
            )
        return (
            f"nothing answers at {link.host}:{link.port} for bus {self.name}: check that the "
            "device or gateway is powered and on the network, and the bus's host and port"
        )

    def _no_answer_message(self, device_id: int, what: str, problem: str) -> str:
        timing = self.timing
        retries = {0: "no retries", 1: "1 retry"}.get(timing.retries, f"{timing.retries} retries")
        where = f"device {device_id} on {self.describe()}"
        if problem == "garbled":
            return (
                f"{where} answered with damaged frames (CRC errors or a reply from another "
                f"device) when asked for {what}: check the A/B wiring, the terminating resistor "
                f"at the end of the line, that the baud rate and parity match, and that no other "
                f"device uses address {device_id}"
            )
        if isinstance(self.link, RtuLink):
            fix = "check its Modbus address, the A/B wiring, the baud rate and its power"
        else:
            fix = "check its unit id (device_id), that the gateway reaches it, and its power"
        return (
            f"{where} did not answer within {timing.timeout_s:g} s ({retries}) when asked for "
            f"{what}: {fix}"
        )

    def _exception_message(self, device_id: int, what: str, code: int) -> str:
        meaning = _EXCEPTION_MEANING.get(code, "an exception code Modbus does not define")
        return (
            f"device {device_id} on {self.describe()} refused {what} with exception code "
            f"{code}, {meaning}"
        )


def _missing(port: str) -> bool:
    """True when the serial device is not there (a stat of a device node: it does not block)."""
    return not os.path.exists(port)


def _check_span(address: int, count: int, most: int) -> None:
    if not (0 <= address <= 0xFFFF and 1 <= count <= most and address + count <= 0x1_0000):
        raise ValueError(
            f"a Modbus request covers 1 to {most} items within addresses 0-65535, got "
            f"address {address} and count {count}"
        )
