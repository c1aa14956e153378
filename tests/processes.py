"""Real processes for end-to-end tests: the Temporal dev server, ``python worker.py``,
``python -m localslack`` and the API, each writing to a log file and stopped by its PID.

The machinery is ``devrun``'s (also behind ``make run`` and the benchmarks); this
module keeps the names the tests import. Everything binds 127.0.0.1.
"""

from devrun import (
    HOST,
    OWN_SETTINGS,
    REPO,
    STOP_TIMEOUT,
    ApiProcess,
    DevServer,
    EmulatorProcess,
    Process,
    Processes,
    WorkerProcess,
    free_port,
    port_open,
    temporal_binary,
)
from workflows.lifecycle.visibility import search_attribute_specs

# Name -> CLI type, as the tests knew it; the one definition is workflows.visibility.
SEARCH_ATTRIBUTE_TYPES = dict(spec.split("=", 1) for spec in search_attribute_specs())

__all__ = [
    "HOST",
    "OWN_SETTINGS",
    "REPO",
    "SEARCH_ATTRIBUTE_TYPES",
    "STOP_TIMEOUT",
    "ApiProcess",
    "DevServer",
    "EmulatorProcess",
    "Process",
    "Processes",
    "WorkerProcess",
    "free_port",
    "port_open",
    "temporal_binary",
]
