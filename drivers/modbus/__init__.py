"""Modbus devices (meters, relay modules, 0-10 V modules) on RS-485 and TCP, through pymodbus.

Modules:
- `profiles`: register maps of device models, read from TOML files (no pymodbus needed);
- `bus`: one Modbus line shared by its devices, with timeouts, retries and back-off;
- `devices`: the meter, relay and dimmer drivers built on a bus and a profile;
- `sim_device`: a pymodbus server that plays devices from their profiles (demo, tests, bench).

This package imports nothing on import, so `drivers.modbus.profiles` can check a config's
device names without loading pymodbus.
"""
