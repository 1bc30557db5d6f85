"""Memory of the daemon with the GPIO and the Modbus example configs, hardware libraries loaded.

`daemon_footprint` measures `streetlight run` with sim.toml, which loads neither gpiozero nor
pymodbus. A real cabinet loads one or both, so this runs the same `Unit` with
`deploy/examples/pi-gpio.toml` and `deploy/examples/pi-modbus.toml`, each in a fresh Python
process (`python -m bench.hardware_footprint CONFIG PORT DATA_DIR`, the console script's
imports plus this file), on a machine without the hardware:

- GPIO pins are gpiozero's MockFactory (MockPWMPin), passed as the unit's pin factory: the
  drivers, gpiozero and its pin objects are all real and loaded;
- the RS-485 port of pi-modbus.toml does not exist here, so the bus reports a fault and the
  zones hold their fail-safe level: pymodbus and pyserial are loaded and the bus retries;
- MQTT goes to a fresh mosquitto on 127.0.0.1 (plain, no password: the examples' TLS files
  are not on this machine); the clock counts as synchronised.

Each child waits until every zone has published its first State, then 2 s more, and prints
VmRSS and VmHWM from /proc/self/status and which hardware libraries were imported. MB are
10^6 bytes.

The issue's target (45 MB) is for sim.toml, measured by `daemon_footprint`. These figures are
shown for information, against no target, so that the cost of the hardware libraries on a
Pi Zero 2 W (512 MB) is known rather than guessed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import Result

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = {
    "pi-gpio.toml": ROOT / "deploy" / "examples" / "pi-gpio.toml",
    "pi-modbus.toml": ROOT / "deploy" / "examples" / "pi-modbus.toml",
}
SETTLE_S = 2.0
CHILD_TIMEOUT_S = 60.0
HARDWARE_LIBRARIES = ("gpiozero", "pymodbus", "serial")
MB = 1000 * 1000 / 1024  # KiB in a MB


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


async def _child(config: Path, port: int, data_dir: Path) -> None:
    from controller.clock import SystemClock  # noqa: PLC0415 - measured: imported here
    from controller.clock_trust import FixedSync  # noqa: PLC0415
    from controller.config_load import load_settings  # noqa: PLC0415
    from controller.settings import device_profile_dirs  # noqa: PLC0415
    from controller.unit import Unit  # noqa: PLC0415
    from drivers.gpio import pin_factory  # noqa: PLC0415

    mqtt = {
        "enabled": True,
        "host": "127.0.0.1",
        "port": port,
        "tls": False,
        "tls_ca_file": None,
        "tls_cert_file": None,
        "tls_key_file": None,
        "username": None,
        "password_file": None,
    }
    settings = load_settings(config, data_dir=data_dir, mqtt=mqtt)
    unit = Unit(
        settings,
        SystemClock(),
        sync=FixedSync(True),
        config_file=config,
        profile_dirs=device_profile_dirs(config),
        pin_factory=pin_factory("mock"),
    )
    running = asyncio.create_task(unit.run())
    await asyncio.wait_for(unit.wait_ready(), CHILD_TIMEOUT_S)
    await asyncio.sleep(SETTLE_S)
    loaded = [name for name in HARDWARE_LIBRARIES if name in sys.modules]
    print(f"rss_kib={_status_kib('VmRSS')} hwm_kib={_status_kib('VmHWM')}", end=" ")
    print(f"libraries={','.join(loaded) or 'none'}", flush=True)
    unit.stop()
    await running


def _measure(config: Path, port: int, data_dir: Path) -> dict[str, str]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.hardware_footprint", str(config), str(port), str(data_dir)],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S + 30,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("STREETLIGHT_")},
        check=False,
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("rss_kib=")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"{config.name}: the child failed:\n{out.stdout[-2000:]}{out.stderr}")
    return dict(pair.split("=", 1) for pair in lines[-1].split())


def run() -> list[Result]:
    """The figures above, measured on this machine."""
    from bench.mqtt_latency import start_broker  # noqa: PLC0415 - not in the child

    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="streetlight-bench-") as tmp:
        broker = start_broker(Path(tmp), nodelay=True)
        try:
            for name, config in CONFIGS.items():
                data_dir = Path(tmp) / name
                data_dir.mkdir()
                got = _measure(config, broker.port, data_dir)
                print(f"hardware_footprint: {name}: libraries imported: {got['libraries']}")
                results += [
                    Result(
                        f"{name}: VmRSS {SETTLE_S:g} s after every first State",
                        int(got["rss_kib"]) / MB,
                        "MB",
                        fmt=",.1f",
                    ),
                    Result(f"{name}: VmHWM (peak RSS)", int(got["hwm_kib"]) / MB, "MB", fmt=",.1f"),
                ]
        finally:
            broker.stop()
    return results


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    asyncio.run(_child(Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])))
