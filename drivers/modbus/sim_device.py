"""Simulated Modbus devices: one real pymodbus server playing several devices from their profiles.

Used by the tests, the demo and the benchmark wherever there is no hardware. `encode` turns
values into the registers a device of a profile would hold (the inverse of the drivers'
decoding), and `SimulatedBus` serves them over TCP or on a serial port, RTU framed, as the
devices on one RS-485 line would: every device id not on the line stays silent.

Faults can be staged per device: "silent" (never answers, like a device without power) and
"garbled" (answers with a broken CRC, like a line without termination; RTU only).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal, cast

from pymodbus import FramerType
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusBaseServer, ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from drivers.modbus.bus import RtuLink, TcpLink
from drivers.modbus.profiles import FUNCTIONS, DeviceProfile, Function

Answer = Literal["answer", "silent", "garbled"]
Tables = dict[Function, dict[int, int | bool]]

_FUNCTION_CODES: dict[Function, int] = {"coil": 1, "discrete": 2, "holding": 3, "input": 4}


def encode(profile: DeviceProfile, values: Mapping[str, float]) -> Tables:
    """The registers a device of `profile` holds when it measures `values`, by function and address.

    Registers not named in `values` hold 0. A value spread over several addresses is split so
    the driver's combination gives it back: each address holds value/n for "sum" and the value
    itself for "mean". Raises ValueError for a name the profile lacks or a value that does not
    fit its register.
    """
    return _encode(profile, values, profile.registers)


def _encode(profile: DeviceProfile, values: Mapping[str, float], names: Iterable[str]) -> Tables:
    unknown = sorted(set(values) - set(profile.registers))
    if unknown:
        raise ValueError(
            f"the profile {profile.name} has no {', '.join(unknown)}; it has "
            f"{', '.join(profile.registers) or 'no registers'}"
        )
    tables: Tables = {}
    for name in names:
        register = profile.registers[name]
        value = float(values.get(name, 0.0))
        part = value / len(register.addresses) if register.combine == "sum" else value
        words = register.encode(part)
        table = tables.setdefault(register.function, {})
        for address in register.addresses:
            for offset, word in enumerate(words):
                table[address + offset] = bool(word) if register.type == "bool" else word
    return tables


class SimulatedBus:
    """A pymodbus server (TCP on `link.host:port`, or RTU on the serial port `link.port`) that
    plays the devices in `devices` (device id -> profile), meters holding `values[id]`.

    Outputs start at 0 (coils off). `stop()` keeps the registers, so `start()` after it serves
    what the devices held, as after a power cut; a serial server must be stopped and started
    again after its port came back (pymodbus does not reopen it).
    """

    def __init__(
        self,
        link: RtuLink | TcpLink,
        devices: Mapping[int, DeviceProfile],
        values: Mapping[int, Mapping[str, float]] | None = None,
    ) -> None:
        self.link = link
        self.profiles = dict(devices)
        self._tables: dict[int, Tables] = {}
        for device_id, profile in self.profiles.items():
            tables = encode(profile, (values or {}).get(device_id, {}))
            channels = profile.channels
            if channels is not None:
                zero: int | bool = False if channels.function == "coil" else 0
                table = tables.setdefault(channels.function, {})
                for address in range(channels.address, channels.address + channels.count):
                    table[address] = zero
            self._tables[device_id] = tables
        self._answer: dict[int, Answer] = {}
        self._server: ModbusBaseServer | None = None
        self.requests = 0  # requests received, answered or not

    @property
    def running(self) -> bool:
        """True between `start()` and `stop()`."""
        return self._server is not None

    async def start(self) -> None:
        """Start serving; returns once the server listens (RuntimeError if it cannot)."""
        if self._server is not None:
            return
        devices = [self._sim_device(device_id) for device_id in self.profiles]
        link = self.link
        server: ModbusBaseServer
        if isinstance(link, TcpLink):
            server = ModbusTcpServer(
                devices,
                address=(link.host, link.port),
                trace_packet=self._trace_packet,
                trace_pdu=self._trace_pdu,
            )
        else:
            server = ModbusSerialServer(
                devices,
                framer=FramerType.RTU,
                port=link.port,
                baudrate=link.baudrate,
                bytesize=link.bytesize,
                parity=link.parity,
                stopbits=link.stopbits,
                trace_packet=self._trace_packet,
                trace_pdu=self._trace_pdu,
            )
        await server.serve_forever(background=True)
        self._server = server

    async def stop(self) -> None:
        """Stop serving, keeping every device's registers for a later `start()`; idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        for device_id, tables in self._tables.items():
            for function, table in tables.items():
                low, high = min(table), max(table)
                held = await server.async_getValues(
                    device_id, _FUNCTION_CODES[function], low, high - low + 1
                )
                for offset, value in enumerate(held):
                    if low + offset in table:
                        table[low + offset] = value
        await server.shutdown()  # type: ignore[no-untyped-call]

    async def set_values(self, device_id: int, values: Mapping[str, float]) -> None:
        """Make meter `device_id` hold `values` (only the named registers change)."""
        tables = _encode(self.profiles[device_id], values, values)
        for function, table in tables.items():
            for address, word in table.items():
                self._tables[device_id][function][address] = word
                if self._server is not None:
                    await self._server.async_setValues(
                        device_id, _FUNCTION_CODES[function], address, [word]
                    )

    async def set_raw(
        self, device_id: int, function: Function, address: int, words: list[int] | list[bool]
    ) -> None:
        """Put raw `words` (bools for coils and discrete inputs) at `address` of device `device_id`.

        For serving a datasheet's example frame as it is. The addresses must be ones the
        device's profile maps (or lie between them).
        """
        table = self._tables[device_id].setdefault(function, {})
        if not table or not min(table) <= address <= address + len(words) - 1 <= max(table):
            raise ValueError(f"device {device_id} has no {function} {address}-{len(words)}")
        for offset, word in enumerate(words):
            table[address + offset] = word
        if self._server is not None:
            await self._server.async_setValues(
                device_id, _FUNCTION_CODES[function], address, list(words)
            )

    async def get_output(self, device_id: int, channel: int) -> int | bool:
        """What a driver last wrote to `channel` of relay or dimmer module `device_id`.

        A coil gives a bool, a register its raw value.
        """
        profile = self.profiles[device_id]
        address = profile.channel_address(channel)
        function = cast(Function, profile.channels.function if profile.channels else "coil")
        if self._server is None:
            return self._tables[device_id][function][address]
        held = await self._server.async_getValues(device_id, _FUNCTION_CODES[function], address, 1)
        return held[0]

    def set_answer(self, device_id: int, answer: Answer) -> None:
        """Make device `device_id` answer normally, stay silent, or answer with a broken CRC."""
        if answer == "garbled" and not isinstance(self.link, RtuLink):
            raise ValueError("garbled frames are simulated on RTU only: TCP frames have no CRC")
        self._answer[device_id] = answer

    def _trace_pdu(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        """pymodbus hook: a request traced to None is dropped, which is how a device is silent."""
        if not sending:
            self.requests += 1
            if pdu.dev_id not in self.profiles or self._answer.get(pdu.dev_id) == "silent":
                return cast(ModbusPDU, None)
        return pdu

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        """pymodbus hook: breaks the CRC (the last byte) of answers from a "garbled" device."""
        rtu = isinstance(self.link, RtuLink)
        if sending and data and rtu and self._answer.get(data[0]) == "garbled":
            return data[:-1] + bytes([data[-1] ^ 0xFF])
        return data

    def _sim_device(self, device_id: int) -> SimDevice:
        blocks: list[list[SimData]] = []
        for function in FUNCTIONS:
            table = self._tables[device_id].get(function)
            bits = function in ("coil", "discrete")
            if not table:
                # pymodbus wants every table; this one sits where no profile reads
                blocks.append(
                    [SimData(0xFFF0, values=[False] * 16, datatype=DataType.BITS)]
                    if bits
                    else [SimData(0xFFFF, datatype=DataType.INVALID)]
                )
                continue
            low, high = min(table), max(table)
            span = range(low, high + 1)
            if bits:
                flags = [bool(table.get(a, False)) for a in span]
                blocks.append([SimData(low, values=flags, datatype=DataType.BITS)])
            else:
                words = [int(table.get(a, 0)) for a in span]
                blocks.append([SimData(low, values=words, datatype=DataType.REGISTERS)])
        return SimDevice(id=device_id, simdata=(blocks[0], blocks[1], blocks[2], blocks[3]))
