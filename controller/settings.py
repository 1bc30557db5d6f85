"""The unit's configuration: a TOML file plus `STREETLIGHT_<SECTION>__<KEY>` environment variables.

Each section is a strict pydantic model: an unknown key anywhere is an error, so a typo is never
silently ignored. Relations between sections (a zone naming a profile, a GPIO pin used twice) are
checked in `controller.config_checks`; `controller.config_load` turns every problem into a
sentence that says where it is, what is wrong and how to fix it.
"""

from __future__ import annotations

import contextvars
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from schedules.anchors import parse_anchor
from schedules.calendar import parse_date_rule

ENV_PREFIX = "STREETLIGHT_"
DEFAULT_CONFIG = Path("/etc/streetlight/config.toml")
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")

# Set by the loader while it validates: the TOML file, and the folder relative paths start from.
current_config_file: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "current_config_file", default=None
)


def device_profile_dirs(config_file: Path | None) -> tuple[Path, ...]:
    """Where a site keeps Modbus device profiles of its own: `devices/` beside the config file."""
    return () if config_file is None else (config_file.resolve().parent / "devices",)


def _check_id(value: str) -> str:
    if not ID_PATTERN.match(value):
        raise ValueError(
            f"{value!r} is not a valid id: use 1-64 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit, e.g. 'soi-3'"
        )
    return value


def _resolve_path(value: Path) -> Path:
    """Relative paths start from the config file's folder, so the unit works from any cwd."""
    config_file = current_config_file.get()
    if value.is_absolute() or config_file is None:
        return value
    return (config_file.parent / value).resolve()


def _check_pin(value: int) -> int:
    if not 2 <= value <= 27:
        raise ValueError(
            f"GPIO {value} is not a usable pin: use a BCM number from 2 to 27 (pins 0 and 1 "
            "are reserved for the HAT ID EEPROM); BCM numbers are the GPIOxx names, not the "
            "physical header positions"
        )
    return value


Id = Annotated[str, AfterValidator(_check_id)]
ConfigPath = Annotated[Path, AfterValidator(_resolve_path)]
BcmPin = Annotated[int, AfterValidator(_check_pin)]
Level = Annotated[int, Field(ge=0, le=100)]


def one_of(*allowed: int) -> AfterValidator:
    """A whole number from a fixed set; unlike Literal it also takes "600" from the environment."""

    def check(value: int) -> int:
        if value not in allowed:
            raise ValueError(f"{value} is not allowed: use one of {', '.join(map(str, allowed))}")
        return value

    return AfterValidator(check)


# 1-247 on RS-485; Modbus TCP devices and gateways also answer to 0 and 248-255
DeviceId = Annotated[int, Field(ge=0, le=255)]


class Section(BaseModel):
    """A config table: unknown keys are errors, values are fixed once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class UnitSettings(Section):
    """Who and where this unit is."""

    id: Id
    site: Annotated[str, Field(min_length=1)]
    latitude: Annotated[float, Field(ge=-90, le=90)]
    longitude: Annotated[float, Field(ge=-180, le=180)]
    timezone: str

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {value!r}: use an IANA name such as 'Asia/Bangkok'"
            ) from exc
        return value

    @property
    def tz(self) -> ZoneInfo:
        """The unit's time zone."""
        return ZoneInfo(self.timezone)


class MqttSettings(Section):
    """How the unit reaches the city's MQTT broker."""

    enabled: bool = True
    host: Annotated[str, Field(min_length=1)] = "localhost"
    port: Annotated[int, Field(ge=1, le=65535)] = 1883
    topic_prefix: str = "streetlight"
    client_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    protocol: Literal["5", "3.1.1"] = "5"

    @field_validator("protocol", mode="before")
    @classmethod
    def _protocol_as_text(cls, value: Any) -> Any:
        return (
            str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
        )

    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 60
    connect_timeout_s: Annotated[float, Field(gt=0, le=120)] = 10.0
    reconnect_min_s: Annotated[float, Field(ge=0.1, le=60)] = 1.0
    reconnect_max_s: Annotated[float, Field(ge=1, le=3600)] = 60.0
    tls: bool = False
    tls_ca_file: ConfigPath | None = None
    tls_cert_file: ConfigPath | None = None
    tls_key_file: ConfigPath | None = None
    username: Annotated[str, Field(min_length=1)] | None = None
    password_file: ConfigPath | None = None
    max_commands_per_s: Annotated[int, Field(ge=1, le=1000)] = 20
    homeassistant_discovery: bool = False

    @field_validator("topic_prefix")
    @classmethod
    def _plain_prefix(cls, value: str) -> str:
        if (
            not value
            or value.startswith("/")
            or value.endswith("/")
            or any(c in value for c in "+#\0")
        ):
            raise ValueError(
                f"{value!r} is not a usable topic prefix: no '+', '#', no leading or "
                "trailing '/', not empty (the default is 'streetlight')"
            )
        return value

    @model_validator(mode="after")
    def _consistent_tls_and_auth(self) -> MqttSettings:
        tls_files = [self.tls_ca_file, self.tls_cert_file, self.tls_key_file]
        if any(tls_files) and not self.tls:
            raise ValueError("TLS files are set but tls = false: set mqtt.tls = true")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError(
                "a client certificate needs its key: set both tls_cert_file and tls_key_file, "
                "or neither"
            )
        if self.password_file is not None and self.username is None:
            raise ValueError("password_file is set without username: set mqtt.username too")
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError(
                "reconnect_min_s is above reconnect_max_s: the shortest wait between "
                "reconnection attempts must not exceed the longest"
            )
        return self


def _step_level(value: int) -> int:
    if not 1 <= value <= 100:
        raise ValueError(
            f"a step's level is 1 to 100, got {value}: a profile never darkens a street between "
            "on and off; end the night earlier with off_offset_min, or switch a night off with "
            "a [[calendar]] entry with level = 0"
        )
    return value


class ProfileStep(Section):
    """From `at` on, the profile asks for `level`, reached over `fade_s` seconds."""

    at: str
    level: Annotated[int, AfterValidator(_step_level)]
    fade_s: Annotated[int, Field(ge=0, le=3600)] = 0

    @field_validator("at")
    @classmethod
    def _valid_anchor(cls, value: str) -> str:
        parse_anchor(value)  # raises a ValueError that says what an anchor looks like
        return value


class DimmingProfile(Section):
    """When a night starts and ends, and the levels through it."""

    on_offset_min: Annotated[float, Field(ge=-180, le=180)] = 0.0
    on_elevation_deg: Annotated[float, Field(ge=-18, le=10)] | None = None
    off_offset_min: Annotated[float, Field(ge=-180, le=180)] = 0.0
    off_elevation_deg: Annotated[float, Field(ge=-18, le=10)] | None = None
    steps: list[ProfileStep] = []
    polar_night: Literal["on", "off"] = "on"
    polar_day: Literal["on", "off"] = "off"

    @model_validator(mode="after")
    def _offset_or_elevation(self) -> DimmingProfile:
        for edge in ("on", "off"):
            if getattr(self, f"{edge}_elevation_deg") is not None and getattr(
                self, f"{edge}_offset_min"
            ):
                raise ValueError(
                    f"{edge}_offset_min and {edge}_elevation_deg both set: a night edge follows "
                    "either an offset to sunset/sunrise or a sun elevation, so keep one"
                )
        return self


class SimOutput(Section):
    """Simulated luminaires with a power model; runs on any machine."""

    type: Literal["sim"]
    standby_w: Annotated[float, Field(ge=0, le=50)] = 0.5


class GpioRelayOutput(Section):
    """A relay on a GPIO pin that switches the luminaires' mains."""

    type: Literal["gpio_relay"]
    pin: BcmPin
    active_high: bool = True


class GpioPwmOutput(Section):
    """PWM on a GPIO pin into a 0-10 V or 1-10 V dimming interface."""

    type: Literal["gpio_pwm"]
    pin: BcmPin
    frequency_hz: Annotated[int, Field(ge=10, le=20000)] = 1000
    interface: Literal["0-10V", "1-10V"] = "0-10V"
    min_level: Level = 10
    curve: Literal["linear", "logarithmic", "table"] = "linear"
    curve_table: list[tuple[Level, Annotated[float, Field(ge=0, le=1)]]] | None = None
    invert: bool = False

    @model_validator(mode="after")
    def _table_when_asked(self) -> GpioPwmOutput:
        table = self.curve_table
        if self.curve != "table":
            if table is not None:
                raise ValueError("curve_table is set but curve is not 'table': set curve = 'table'")
            return self
        if table is None or len(table) < 2:
            raise ValueError(
                "curve = 'table' needs curve_table with at least two [level, duty] points "
                "measured on site, e.g. [[10, 0.12], [50, 0.45], [100, 1.0]]"
            )
        levels = [level for level, _ in table]
        duties = [duty for _, duty in table]
        if levels != sorted(set(levels)) or duties != sorted(duties):
            raise ValueError(
                "curve_table points must go up: levels strictly increasing, duty never falling"
            )
        return self


class ModbusChannel(Section):
    """One channel of a device on a Modbus bus."""

    bus: str
    device_id: DeviceId
    channel: Annotated[int, Field(ge=0, le=255)] = 0


class ModbusRelayOutput(ModbusChannel):
    """A coil of a Modbus relay module."""

    type: Literal["modbus_relay"]
    device: Id = "generic-relay"


class ModbusDimmerOutput(ModbusChannel):
    """A channel of a Modbus 0-10 V analogue output module."""

    type: Literal["modbus_dimmer"]
    device: Id = "generic-0-10v"
    min_level: Level = 10


Output = Annotated[
    SimOutput | GpioRelayOutput | GpioPwmOutput | ModbusRelayOutput | ModbusDimmerOutput,
    Field(discriminator="type"),
]


class SimMotionInput(Section):
    """Simulated passers-by: a seeded random process, busier in the evening."""

    type: Literal["sim"]
    passers_per_hour: Annotated[float, Field(ge=0, le=3600)] = 12.0
    seed: int | None = None


class GpioPirInput(Section):
    """A PIR motion sensor on a GPIO pin."""

    type: Literal["gpio_pir"]
    pin: BcmPin
    active_high: bool = True
    min_active_s: Annotated[float, Field(ge=0, le=10)] = 0.2


MotionInput = Annotated[SimMotionInput | GpioPirInput, Field(discriminator="type")]


class SimLightInput(Section):
    """A simulated photocell that follows the sun."""

    type: Literal["sim"]


class GpioPhotocellInput(Section):
    """A photocell relay contact on a GPIO pin, saying day or night."""

    type: Literal["gpio_photocell"]
    pin: BcmPin
    dark_when: Literal["high", "low"] = "high"


LightInput = Annotated[SimLightInput | GpioPhotocellInput, Field(discriminator="type")]


class MotionSettings(Section):
    """How a zone answers its motion sensors (and those of zones naming it a neighbour)."""

    level: Annotated[int, Field(ge=1, le=100)] = 100
    rise_s: Annotated[float, Field(ge=0, le=60)] = 2.0
    hold_s: Annotated[float, Field(ge=1, le=3600)] = 60.0
    fade_s: Annotated[float, Field(ge=0, le=3600)] = 30.0
    neighbours: list[Id] = []


class CalendarEntrySettings(Section):
    """Nights that differ from the profile: a level all night, or another profile."""

    name: Annotated[str, Field(min_length=1)]
    dates: list[str] = []
    weekdays: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = []
    zones: list[str] = []
    groups: list[str] = []
    level: Level | None = None
    profile: str | None = None

    @field_validator("dates")
    @classmethod
    def _valid_dates(cls, value: list[str]) -> list[str]:
        for text in value:
            parse_date_rule(text)  # its ValueError says what a date looks like
        return value

    @model_validator(mode="after")
    def _one_action(self) -> CalendarEntrySettings:
        if (self.level is None) == (self.profile is None):
            raise ValueError(
                "a calendar entry needs exactly one of level (e.g. 100 for a festival, 0 for "
                "a night off) or profile (the name of another profile)"
            )
        if not self.dates and not self.weekdays:
            raise ValueError("a calendar entry needs dates, weekdays, or both")
        return self


class ZoneSettings(Section):
    """A set of luminaires switched and dimmed together."""

    id: Id
    name: str = ""
    groups: list[Id] = []
    profile: str
    on_level: Annotated[int, Field(ge=1, le=100)] = 100
    failsafe_level: Level = 100
    stop_level: Level | None = None
    rated_w: Annotated[float, Field(gt=0, le=100_000)]
    baseline_w: Annotated[float, Field(gt=0, le=100_000)] | None = None
    outputs: Annotated[list[Output], Field(min_length=1)]
    motion_inputs: list[MotionInput] = []
    light_input: LightInput | None = None
    motion: MotionSettings | None = None

    @property
    def label(self) -> str:
        """The zone's name for people, falling back to its id."""
        return self.name or self.id

    @property
    def baseline_power_w(self) -> float:
        """Power of the lamps the donation replaced; the zone's rated power when unknown."""
        return self.baseline_w if self.baseline_w is not None else self.rated_w


class ModbusBusCommon(Section):
    """Timing shared by both kinds of Modbus bus."""

    timeout_s: Annotated[float, Field(gt=0, le=30)] = 1.0
    retries: Annotated[int, Field(ge=0, le=10)] = 2
    frame_gap_ms: Annotated[int, Field(ge=0, le=1000)] = 10
    backoff_max_s: Annotated[float, Field(ge=1, le=3600)] = 60.0


class RtuBus(ModbusBusCommon):
    """An RS-485 line through a serial adapter."""

    type: Literal["rtu"]
    port: Annotated[str, Field(min_length=1)]
    baudrate: Annotated[int, one_of(1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)] = 9600
    parity: Literal["N", "E", "O"] = "N"
    bytesize: Annotated[int, one_of(7, 8)] = 8
    stopbits: Annotated[int, one_of(1, 2)] = 1


class TcpBus(ModbusBusCommon):
    """A Modbus TCP device or RS-485 gateway on the cabinet's network."""

    type: Literal["tcp"]
    host: Annotated[str, Field(min_length=1)]
    port: Annotated[int, Field(ge=1, le=65535)] = 502


Bus = Annotated[RtuBus | TcpBus, Field(discriminator="type")]


class ModbusMeter(Section):
    """An energy meter on a Modbus bus."""

    type: Literal["modbus"]
    bus: str
    device_id: DeviceId
    device: Id
    zones: Annotated[list[str], Field(min_length=1)]
    interval_s: Annotated[int, Field(ge=5, le=3600)] = 60


class SimMeter(Section):
    """A simulated meter that integrates the simulated luminaires' power."""

    type: Literal["sim"]
    zones: Annotated[list[str], Field(min_length=1)]
    interval_s: Annotated[int, Field(ge=5, le=3600)] = 60


Meter = Annotated[ModbusMeter | SimMeter, Field(discriminator="type")]


class EnergySettings(Section):
    """Energy records and the figures reports are computed with."""

    interval: Annotated[int, one_of(300, 600, 900, 1800, 3600)] = 900
    retention_days: Annotated[int, Field(ge=1, le=3650)] = 400
    tariff_thb_per_kwh: Annotated[float, Field(ge=0, le=100)] = 4.15
    co2_kg_per_kwh: Annotated[float, Field(ge=0, le=2)] = 0.4750
    min_free_mb: Annotated[int, Field(ge=1, le=1_000_000)] = 64


class OverrideSettings(Section):
    """Remote overrides."""

    default_duration: Annotated[int, Field(ge=60, le=86400)] = 14400


class ClockSettings(Section):
    """When the unit may believe its clock."""

    require_sync: bool = True


class LoggingSettings(Section):
    """What the daemon writes to stdout (and so to journald)."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["logfmt", "json"] = "logfmt"

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class ConfigProblems(Exception):
    """Raised out of validation with every field error and cross-reference problem found."""

    def __init__(self, errors: list[dict[str, Any]], raw: dict[str, Any]) -> None:
        super().__init__(f"{len(errors)} config problems")
        self.errors = errors
        self.raw = raw


class Settings(BaseSettings):
    """The whole configuration of one unit."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        case_sensitive=False,
    )

    unit: UnitSettings
    mqtt: MqttSettings = MqttSettings()
    data_dir: ConfigPath = Path("/var/lib/streetlight")
    zones: Annotated[list[ZoneSettings], Field(min_length=1)]
    profiles: dict[Id, DimmingProfile] = {}
    calendar: list[CalendarEntrySettings] = []
    buses: dict[Id, Bus] = {}
    meters: dict[Id, Meter] = {}
    energy: EnergySettings = EnergySettings()
    overrides: OverrideSettings = OverrideSettings()
    clock: ClockSettings = ClockSettings()
    logging: LoggingSettings = LoggingSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment variables override the TOML file, key by key."""
        config_file = current_config_file.get()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if config_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)

    @model_validator(mode="wrap")
    @classmethod
    def _collect_every_problem(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """Report field errors and cross-reference problems together, in one run."""
        from controller.config_checks import cross_reference_errors  # noqa: PLC0415 - cycle

        raw = data if isinstance(data, dict) else {}
        errors = cross_reference_errors(raw)
        try:
            settings = handler(data)
        except ValidationError as exc:
            raise ConfigProblems(
                [dict(e) for e in exc.errors(include_url=False)] + errors, raw
            ) from None
        if errors:
            raise ConfigProblems(errors, raw)
        return settings

    def zone(self, zone_id: str) -> ZoneSettings:
        """The zone with this id; KeyError when there is none."""
        for zone in self.zones:
            if zone.id == zone_id:
                return zone
        raise KeyError(zone_id)
