"""Run the benchmarks: `python -m bench` runs all of them, `python -m bench NAME ...` some.

Every module in this folder whose name does not start with `_` is a benchmark with a
`run() -> list[Result]` function. The exit status is 1 when a figure misses its target, 2 for
an unknown benchmark name, 0 otherwise. `--profile` runs them under cProfile and prints where
the time goes (the figures are then slowed by the profiler and not to be quoted).
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import pkgutil
import platform
import pstats
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import TextIO, cast

from bench import Result

_ROW = "  {:<52} {:>14} {:<6} {:<16} {}"


def available() -> list[str]:
    """The benchmark modules in this folder, by name."""
    folder = str(Path(__file__).parent)
    return sorted(m.name for m in pkgutil.iter_modules([folder]) if not m.name.startswith("_"))


def _runner(module: ModuleType) -> Callable[[], list[Result]]:
    run = getattr(module, "run", None)
    if not callable(run):
        raise SystemExit(f"bench/{module.__name__.rsplit('.', 1)[-1]}.py has no run() function")
    return cast(Callable[[], list[Result]], run)


def _title(module: ModuleType) -> str:
    return (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else ""


def _verdict(result: Result) -> str:
    if result.met is None:
        return ""
    return "ok" if result.met else "MISSED"


def print_results(name: str, title: str, results: Sequence[Result], out: TextIO) -> None:
    """One benchmark's figures as a table: name, figure, unit, target and verdict."""
    print(f"\n{name}: {title}", file=out)
    print(_ROW.format("figure", "value", "unit", "target", ""), file=out)
    for result in results:
        row = (result.name, result.figure, result.unit, result.target, _verdict(result))
        print(_ROW.format(*row).rstrip(), file=out)


def _machine() -> str:
    return (
        f"Python {platform.python_version()} on {platform.machine()}, "
        f"{platform.system()} {platform.release()}"
    )


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    """Run the named benchmarks (all when none are named) and print their figures."""
    names = available()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"one of: {', '.join(names)}")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--profile", action="store_true", help="run under cProfile")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(names), file=out)
        return 0
    unknown = [n for n in args.names if n not in names]
    if unknown:
        parser.print_usage(sys.stderr)
        print(
            f"unknown benchmark {', '.join(unknown)}; there are: {', '.join(names)}",
            file=sys.stderr,
        )
        return 2
    print(f"streetlight benchmarks, {time.strftime('%Y-%m-%d %H:%M %Z')}, {_machine()}", file=out)
    missed = False
    for name in args.names or names:
        module = importlib.import_module(f"bench.{name}")
        run = _runner(module)
        if args.profile:
            profiler = cProfile.Profile()
            results = profiler.runcall(run)
        else:
            results = run()
        print_results(name, _title(module), results, out)
        missed = missed or any(result.met is False for result in results)
        if args.profile:
            print(f"\n{name} under cProfile (figures above are slowed by it):", file=out)
            stats = pstats.Stats(profiler, stream=out).strip_dirs()
            stats.sort_stats("tottime").print_stats(25)
            stats.sort_stats("cumulative").print_stats(25)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
