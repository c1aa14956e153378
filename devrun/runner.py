"""The dev runner behind ``make run``: the whole stack on this machine, Ctrl-C stops it.

python -m devrun.runner

Starts, in order, each as a child process and waits until it is ready:

1. the Temporal dev server (gRPC on 127.0.0.1:7233, Web UI on :8233, data in .data/temporal.db,
   the incident search attributes registered);
2. the local Slack emulator on 127.0.0.1:3090, unless SLACK_BOT_TOKEN is set; its workspace is
   kept in .data/localslack.json, so incidents keep their channels across restarts;
3. ``python worker.py``, after ``incident db upgrade`` brought the database (.data/incidents.db
   unless INCIDENT_DATABASE_URL says) to the newest schema;
4. ``python -m starter.api`` on 127.0.0.1:8000, after the same upgrade (a no-op by then).

Then it prints the URLs, an API token and ready-to-paste examples. Child output is appended
to .data/logs/<name>.log and copied to this terminal, each line prefixed with the child's name.

When the emulator, the worker or the API dies, it is restarted after a pause that doubles with
each quick failure (1 s up to 30 s). Only Temporal dying ends the run, since it holds the
incidents. SIGINT (Ctrl-C), SIGTERM or SIGHUP stops the children by PID in reverse order
(SIGTERM, then SIGKILL after a timeout; a second Ctrl-C kills at once). Everything the runner
creates is private to the user (umask 077). Ports come from TEMPORAL_PORT, TEMPORAL_UI_PORT,
LOCALSLACK_PORT and API_PORT; DEV_DATA_DIR puts the state somewhere else than .data.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import ValidationError

from devrun.parts import ApiProcess, DevServer, EmulatorProcess, WorkerProcess
from devrun.plan import (
    DevError,
    Plan,
    banner,
    make_plan,
    write_env_file,
)
from devrun.process import Console, Process, port_open, private_dir

T = TypeVar("T")

FIRST_BACKOFF = 1.0
MAX_BACKOFF = 30.0
# A process that ran this long before dying is restarted after the first pause again.
STEADY_AFTER = 60.0
WATCH_INTERVAL = 0.5


class Stopped(Exception):
    """SIGINT, SIGTERM or SIGHUP: stop everything and exit cleanly."""


def backoff(failures: int) -> float:
    """The pause before restart number ``failures`` (1, 2, 4 ... seconds, at most 30)."""
    return float(min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** max(0, failures - 1)))


@dataclass
class Part:
    """One process of the stack and how to start it until it is ready."""

    process: Process
    launch: Callable[[], Awaitable[Any]]
    essential: bool = False  # its death ends the run instead of a restart
    failures: int = 0
    restarting: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self.process.name


def parts(plan: Plan) -> list[Part]:
    env, data = plan.child_env, plan.data
    temporal = DevServer(
        data.temporal_db,
        data.logs / "temporal.log",
        port=plan.ports.temporal,
        ui_port=plan.ports.temporal_ui,
        namespace=plan.namespace,
        # warn prints a dozen harmless dial errors at every stop; errors still show.
        log_level="error",
        inherit=env,
    )
    result = [Part(temporal.process, lambda: temporal.start(timeout=90.0), essential=True)]
    if plan.slack_emulated:
        emulator = EmulatorProcess(
            data.logs / "localslack.log",
            plan.ports.localslack,
            broadcast_channel=plan.broadcast_channel,
            snapshot=data.snapshot,
            inherit=env,
        )
        result.append(Part(emulator, emulator.started))
    worker = WorkerProcess(
        data.logs / "worker.log",
        temporal_address=plan.temporal_address,
        task_queue=plan.task_queue,
        slack_api_url=plan.slack_api_url,
        env={
            "LOG_FORMAT": env.get("LOG_FORMAT", "console"),
            "INCIDENT_DATABASE_URL": env["INCIDENT_DATABASE_URL"],
        },
        inherit=env,
    )
    result.append(Part(worker, lambda: worker.started(timeout=60.0)))
    api = ApiProcess(
        data.logs / "api.log",
        temporal_address=plan.temporal_address,
        port=plan.ports.api,
        inherit=env,
    )
    result.append(Part(api, api.started))
    return result


class Runner:
    def __init__(self, plan: Plan, planned: list[Part]) -> None:
        self.plan = plan
        self.parts = planned
        self.console = Console([p.name for p in planned])
        self.stop_requested = asyncio.Event()
        self._stop_task: asyncio.Task[bool] | None = None

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, self._on_signal, sig)
        self._stop_task = asyncio.create_task(self.stop_requested.wait())

    def _on_signal(self, sig: signal.Signals) -> None:
        if self.stop_requested.is_set():
            self.console.say(f"{sig.name} again: killing what is left")
            for part in self.parts:
                part.process.send(signal.SIGKILL)
            return
        self.console.say(f"{sig.name}: stopping")
        self.stop_requested.set()

    async def unless_stopped(self, awaitable: Awaitable[T]) -> T:
        """Await something, unless a stop is requested first (then raise Stopped)."""
        task: asyncio.Future[T] = asyncio.ensure_future(awaitable)
        assert self._stop_task is not None
        watched: set[asyncio.Future[Any]] = {task, self._stop_task}
        await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        raise Stopped

    def preflight(self) -> None:
        """Refuse to start anything when a port is taken, rather than fail halfway."""
        ports = self.plan.ports
        wanted = {"temporal": ports.temporal, "temporal web ui": ports.temporal_ui}
        wanted["api"] = ports.api
        if self.plan.slack_emulated:
            wanted["localslack"] = ports.localslack
        busy = [f"{port} ({name})" for name, port in wanted.items() if port_open(port)]
        if busy:
            raise DevError(
                f"already in use: {', '.join(busy)} (another `make run`?); stop that, or choose "
                "other ports with TEMPORAL_PORT, TEMPORAL_UI_PORT, LOCALSLACK_PORT, API_PORT"
            )

    async def start(self, part: Part) -> None:
        self.console.say(f"starting {part.name}: {shlex.join(part.process.argv)}")
        try:
            await part.launch()
        except (RuntimeError, TimeoutError) as error:
            raise DevError(
                f"{part.name} did not start: {str(error).splitlines()[0]}; "
                f"see {self.plan.data.shown(part.process.log)}"
            ) from None
        self.console.say(f"{part.name} is ready (pid {part.process.pid})")

    async def watch(self) -> str:
        """Restart what dies; return why the run must end (Temporal died)."""
        while True:
            for part in self.parts:
                if part.process.alive or part.restarting is not None:
                    continue
                code = part.process.returncode
                if part.essential:
                    return (
                        f"{part.name} exited with code {code}; it holds every incident, so the "
                        f"run stops here (see {self.plan.data.shown(part.process.log)}); "
                        "`make run` again resumes where it was"
                    )
                part.restarting = asyncio.create_task(self._restart(part, code))
            await asyncio.sleep(WATCH_INTERVAL)

    async def _restart(self, part: Part, code: int | None) -> None:
        ran = time.monotonic() - part.process.started_at
        part.failures = 1 if ran >= STEADY_AFTER else part.failures + 1
        while True:
            pause = backoff(part.failures)
            self.console.say(
                f"{part.name} exited with code {code}; restarting it in {pause:.0f}s "
                f"(restart {part.failures}, log kept in {part.process.log.name})"
            )
            await asyncio.sleep(pause)
            try:
                await part.launch()
            except (RuntimeError, TimeoutError):
                part.process.stop()
                code = part.process.returncode
                part.failures += 1
                continue
            self.console.say(f"{part.name} is back (pid {part.process.pid})")
            part.restarting = None
            return

    async def stop_all(self) -> None:
        for part in reversed(self.parts):
            if part.restarting is not None:
                part.restarting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await part.restarting
            if part.process.alive:
                self.console.say(f"stopping {part.name} (pid {part.process.pid})")
                # In a thread, so a second Ctrl-C can still kill what is slow to stop.
                await asyncio.to_thread(part.process.stop)


async def serve(plan: Plan) -> int:
    private_dir(plan.data.root)
    private_dir(plan.data.logs)
    try:
        runner = Runner(plan, parts(plan))
    except FileNotFoundError as missing:  # the temporal CLI
        print(f"dev: error: {missing}", file=sys.stderr)
        return 1
    runner.install_signal_handlers()
    follow = asyncio.create_task(
        runner.console.follow({p.name: p.process.log for p in runner.parts})
    )
    failure = ""
    try:
        runner.preflight()
        for part in runner.parts:
            await runner.unless_stopped(runner.start(part))
        write_env_file(plan)
        banner(plan, sys.stdout)
        failure = await runner.unless_stopped(runner.watch())
    except Stopped:
        pass
    except DevError as error:
        failure = str(error)
    finally:
        await runner.stop_all()
        await asyncio.sleep(0.2)  # the last lines the children wrote
        follow.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follow
    if failure:
        print(f"dev: error: {failure}", file=sys.stderr)
        return 1
    runner.console.say("all stopped")
    return 0


def main() -> None:
    # Logs, the token, the emulator's workspace and Temporal's database are the user's only.
    os.umask(0o077)
    try:
        plan = make_plan(os.environ)
    except (DevError, ValidationError) as error:
        print(f"dev: error: {error}", file=sys.stderr)
        sys.exit(2)
    sys.exit(asyncio.run(serve(plan)))


if __name__ == "__main__":
    main()
