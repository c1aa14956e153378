"""The local stack as a tool, outside the product's entry points: the dev runner behind
``make run`` (``python -m devrun.runner``), and the child processes it, the tests and the
benchmarks start: one way to start them by PID with a private log, check they are ready, and
stop them.
"""

from devrun.parts import (
    ApiProcess,
    DatabaseUpgrade,
    DevServer,
    EmulatorProcess,
    WorkerProcess,
    temporal_binary,
)
from devrun.process import (
    HOST,
    OWN_SETTINGS,
    REPO,
    STOP_TIMEOUT,
    Process,
    Processes,
    free_port,
    open_private,
    port_open,
    private_dir,
    write_private,
)

__all__ = [
    "HOST",
    "OWN_SETTINGS",
    "REPO",
    "STOP_TIMEOUT",
    "ApiProcess",
    "DatabaseUpgrade",
    "DevServer",
    "EmulatorProcess",
    "Process",
    "Processes",
    "WorkerProcess",
    "free_port",
    "open_private",
    "port_open",
    "private_dir",
    "temporal_binary",
    "write_private",
]
