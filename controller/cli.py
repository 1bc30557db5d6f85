"""`streetlight`: the one program technicians, operators and systemd run.

Heavy modules are imported inside each command, so `streetlight --help` and `check` start fast
on a Pi Zero.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130  # the shell convention for SIGINT


def _parser() -> argparse.ArgumentParser:
    from controller import __version__  # noqa: PLC0415

    parser = argparse.ArgumentParser(
        prog="streetlight",
        description="Edge controller for smart streetlights: schedules, dims and meters the "
        "luminaires of one street cabinet.",
    )
    parser.add_argument("--version", action="version", version=f"streetlight {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    config_help = "config file (default: $STREETLIGHT_CONFIG, else /etc/streetlight/config.toml)"

    run = commands.add_parser("run", help="the daemon, as systemd starts it")
    run.add_argument("--config", metavar="FILE", help=config_help)

    check = commands.add_parser("check", help="validate the config and list every problem")
    check.add_argument("--config", metavar="FILE", help=config_help)

    plan = commands.add_parser(
        "schedule", help="the plan for N nights: when each zone switches and dims"
    )
    plan.add_argument("--config", metavar="FILE", help=config_help)
    plan.add_argument(
        "--date", type=_date, metavar="D", help="first night, YYYY-MM-DD (default: today)"
    )
    plan.add_argument(
        "--days", type=_days, default=1, metavar="N", help="nights to show (1-366, default 1)"
    )
    plan.add_argument("--json", action="store_true", help="one JSON object instead of a table")

    demo = commands.add_parser(
        "demo", help="simulated luminaires through a few nights, fast-forwarded"
    )
    demo.add_argument(
        "--nights",
        type=_nights,
        default=1,
        metavar="N",
        help="nights to simulate (1-30, default 1)",
    )
    demo.add_argument(
        "--speed",
        type=_speed,
        default=3600.0,
        metavar="X",
        help="simulated seconds per real second (default 3600: an hour a second)",
    )
    demo.add_argument(
        "--broker",
        type=_broker,
        metavar="HOST:PORT",
        help="also publish to this MQTT broker and take commands from it (default: none)",
    )
    commission = commands.add_parser(
        "commission", help="self-test the unit's lamps, meters and sensors after installing it"
    )
    commission.add_argument("--config", metavar="FILE", help=config_help)
    commission.add_argument(
        "--hold",
        type=_seconds,
        default=3.0,
        metavar="S",
        help="seconds each lamp state is held so you can see it (default 3)",
    )
    commission.add_argument(
        "--wait",
        type=_seconds,
        default=30.0,
        metavar="S",
        help="seconds each motion sensor or photocell waits to be triggered (default 30)",
    )
    energy = commands.add_parser(
        "report",
        help="the energy and savings report for a period, for funders (see docs/reports.md)",
    )
    energy.add_argument("--config", metavar="FILE", help=config_help)
    energy.add_argument(
        "--from", dest="start", type=_date, metavar="D", help="first day, YYYY-MM-DD (included)"
    )
    energy.add_argument(
        "--to", dest="end", type=_date, metavar="D", help="last day, YYYY-MM-DD (included)"
    )
    energy.add_argument(
        "--format",
        choices=("csv", "html", "json"),
        help="default: from --out's file name (.csv, .json, .html), else html",
    )
    energy.add_argument(
        "--lang", choices=("en", "th"), default="en", help="language (default en; th: Thai)"
    )
    energy.add_argument("--out", metavar="FILE", help="write to FILE (default: stdout)")
    energy.add_argument(
        "--forecast",
        action="store_true",
        help="forecast the savings of the configured profiles instead (--from/--to optional)",
    )
    energy.add_argument(
        "--alternative",
        dest="alternatives",
        action="append",
        default=[],
        metavar="SPEC",
        help="with --forecast: an alternative to compare (repeatable)",
    )
    return parser


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value <= 600:
        raise argparse.ArgumentTypeError("takes 0 to 600 seconds")
    return value


def _date(text: str) -> str:
    from datetime import date  # noqa: PLC0415

    try:
        date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date: write YYYY-MM-DD, e.g. 2026-11-21"
        ) from None
    return text


def _days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of nights (1-366)") from None
    if not 1 <= value <= 366:
        raise argparse.ArgumentTypeError("--days takes 1 to 366")
    return value


def _nights(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 30:
        raise argparse.ArgumentTypeError("--nights takes 1 to 30")
    return value


def _broker(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not HOST:PORT: write the broker's name or address and its port, "
            "e.g. localhost:1883"
        )
    return host.strip("[]"), int(port)


def _speed(text: str) -> float:
    value = float(text)
    if not 1 <= value <= 10_000_000:
        raise argparse.ArgumentTypeError("--speed takes 1 to 10000000 simulated seconds per second")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command line; return the process exit code."""
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except BrokenPipeError:  # `streetlight schedule --json | head`: the reader left early
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "check":
        from controller.commands.check import check  # noqa: PLC0415

        return check(args.config)
    if args.command == "run":
        from controller.commands.run import run  # noqa: PLC0415

        return run(args.config)
    if args.command == "schedule":
        from controller.commands.schedule import schedule  # noqa: PLC0415

        return schedule(args.config, args.date, args.days, args.json)
    if args.command == "demo":
        from controller.commands.demo import demo  # noqa: PLC0415

        return demo(nights=args.nights, speed=args.speed, broker=args.broker)
    if args.command == "commission":
        from controller.commands.commission import commission  # noqa: PLC0415

        return commission(args.config, hold_s=args.hold, wait_s=args.wait)
    if args.command == "report":
        from controller.commands.report import report  # noqa: PLC0415

        return report(
            args.config,
            args.start,
            args.end,
            args.format,
            args.lang,
            args.out,
            forecast=args.forecast,
            alternatives=args.alternatives,
        )
    raise AssertionError(f"unhandled command {args.command}")  # argparse prevents this


if __name__ == "__main__":
    sys.exit(main())
