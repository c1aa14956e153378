"""Typed settings from the environment, each variable named once (docs/contract.md).

``from config import Settings, ConfigError, connect``: config/settings.py defines every
setting, config/temporal.py reads the Temporal connection as Temporal's own tools do, and
config/deployment.py keeps the worker's search attributes, digest schedule and current Worker
Deployment version in place.
"""

from config.settings import (
    LOOPBACK_HOSTS,
    CliSettings,
    EmulatorSettings,
    Settings,
)
from config.temporal import ConfigError, connect, connect_options, load_profile, reveal

__all__ = [
    "LOOPBACK_HOSTS",
    "CliSettings",
    "ConfigError",
    "EmulatorSettings",
    "Settings",
    "connect",
    "connect_options",
    "load_profile",
    "reveal",
]
