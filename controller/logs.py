"""Structured logs: one line per event, to stdout, where systemd hands them to journald.

Code logs events with `log_event(logger, "zone_level", zone="soi-3", level=40)`; the line
reads `time=... level=info logger=controller.daemon event=zone_level zone=soi-3 level=40`
(logfmt), or the same as one JSON object. Secrets never go into fields.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any

_FIELDS = "streetlight_fields"


def log_event(
    logger: logging.Logger, event: str, *, level: int = logging.INFO, **fields: Any
) -> None:
    """Log one event with its fields as structured data."""
    if logger.isEnabledFor(level):
        logger.log(level, event, extra={_FIELDS: fields})


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, float):
        return round(value, 4)
    return value


def _record_fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname.lower(),
        "logger": record.name,
    }
    custom = getattr(record, _FIELDS, None)
    if custom is None:
        fields["msg"] = record.getMessage()
    else:
        fields["event"] = record.getMessage()
        # an event's own field never hides the record's time, level or logger
        fields.update({(k if k not in fields else f"{k}_"): _plain(v) for k, v in custom.items()})
    if record.exc_info:
        fields["error"] = logging.Formatter().formatException(record.exc_info)
    return fields


def _logfmt_value(value: Any) -> str:
    text = (
        "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    )
    if text == "" or any(c in text for c in ' ="\n\t'):
        return json.dumps(text, ensure_ascii=False)
    return text


class LogfmtFormatter(logging.Formatter):
    """`key=value` pairs on one line; values with spaces are quoted."""

    def format(self, record: logging.LogRecord) -> str:
        """One log record as one logfmt line."""
        return " ".join(f"{k}={_logfmt_value(v)}" for k, v in _record_fields(record).items())


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        """One log record as one JSON line."""
        return json.dumps(_record_fields(record), ensure_ascii=False, default=str)


def setup_logging(level: str = "INFO", fmt: str = "logfmt", stream: IO[str] | None = None) -> None:
    """Send every log line to `stream` (stdout by default) in the chosen format."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter() if fmt == "json" else LogfmtFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # pymodbus logs every timeout at ERROR with hex dumps; the drivers report faults themselves
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
