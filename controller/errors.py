"""The errors the controller raises on purpose; each says what is wrong in words for people."""

from __future__ import annotations

from collections.abc import Sequence


class StreetlightError(Exception):
    """Root of every error the controller raises on purpose."""


class ConfigError(StreetlightError, ValueError):
    """The configuration cannot be used; `problems` says every reason at once."""

    def __init__(self, config_file: object, problems: Sequence[object]) -> None:
        self.config_file = config_file
        self.problems = list(problems)
        super().__init__(f"{config_file}: {len(problems)} problem(s) in the configuration")
