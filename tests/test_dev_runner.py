"""``make run`` (``python -m devrun.runner``) as a user runs it: a crash of the worker is
survived, logs are appended, files are private, and only Temporal dying ends the run."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import stat
import sys
from pathlib import Path

import psutil

from devrun.plan import make_plan
from tests.processes import Process, free_port


def ready_pid(runner: Process, name: str, word: str = "ready") -> int:
    found = re.findall(rf"{name} is {word} \(pid (\d+)\)", runner.output(tail=0))
    assert found, runner.output()
    return int(found[-1])


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def test_make_run_restarts_a_dead_worker_and_stops_only_when_temporal_dies(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    ports = {
        "TEMPORAL_PORT": free_port(),
        "TEMPORAL_UI_PORT": free_port(),
        "LOCALSLACK_PORT": free_port(),
        "API_PORT": free_port(),
    }
    runner = Process(
        "dev",
        [sys.executable, "-m", "devrun.runner"],
        tmp_path / "dev.log",
        env={"DEV_DATA_DIR": str(data), "NO_COLOR": "1", **{k: str(v) for k, v in ports.items()}},
    )
    runner.start()
    try:
        await runner.wait_for_output("Incident automation is running", timeout=120)

        # Everything the run wrote is the user's only.
        assert mode(data) == 0o700
        assert mode(data / "logs") == 0o700
        for private in ["api-token", "dev.env", "temporal.db", *os.listdir(data / "logs")]:
            path = data / private if (data / private).exists() else data / "logs" / private
            assert mode(path) == 0o600, private

        worker = ready_pid(runner, "worker")
        api = ready_pid(runner, "api")
        os.kill(worker, signal.SIGKILL)
        await runner.wait_for_output("worker is back", timeout=60)
        assert "worker exited with code -9; restarting it in 1s" in runner.output(tail=0)
        assert ready_pid(runner, "worker", "back") != worker
        assert psutil.pid_exists(api) and not gone(api), "the API was left alone"
        log = (data / "logs" / "worker.log").read_text()
        assert log.count("=== ") == 2 and log.count("worker_started") == 2, log

        temporal = ready_pid(runner, "temporal")
        os.kill(temporal, signal.SIGKILL)
        assert runner.popen is not None
        assert await asyncio.to_thread(runner.popen.wait, 60) == 1
        assert "temporal exited with code -9; it holds every incident" in runner.output(tail=0)
        assert gone(api) and gone(ready_pid(runner, "worker", "back"))
    finally:
        runner.stop(signal.SIGINT)


def test_make_run_keeps_the_developers_temporal_profiles_away_from_its_dev_server(
    tmp_path: Path,
) -> None:
    """A Cloud profile (API key, TLS) in the developer's config file must not be sent to the
    local dev server that `make run` starts: its processes read no config file and no profile."""
    environ = {"TEMPORAL_PROFILE": "cloud", "DEV_DATA_DIR": str(tmp_path)}
    env = make_plan(environ).child_env
    assert env["TEMPORAL_CONFIG_FILE"] == os.devnull
    assert "TEMPORAL_PROFILE" not in env
