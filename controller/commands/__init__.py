"""One module per `streetlight` command, and what they share."""

from __future__ import annotations

import sys

from controller.config_load import load_settings
from controller.errors import ConfigError
from controller.settings import Settings


def settings_for(config: str | None, consequence: str) -> Settings | None:
    """The unit's settings; or None, after printing every problem and `consequence` (what
    cannot happen until they are fixed) to stderr, so the command exits with code 2."""
    try:
        return load_settings(config)
    except ConfigError as exc:
        count = len(exc.problems)
        print(f"{exc.config_file}: {consequence}; {count} problem(s):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return None
