"""Child processes for the dev runner (``make run``), the tests and the benchmarks: one way
to start them by PID with a private log, check they are ready, and stop them."""

from starter.supervisor.parts import (
    ApiProcess,
    DevServer,
    EmulatorProcess,
    WorkerProcess,
    temporal_binary,
)
from starter.supervisor.process import (
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
