"""The streetlight daemon: composes the schedule core and the drivers, talks MQTT, keeps
the energy ledger."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("streetlight")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
