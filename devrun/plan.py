"""What ``make run`` decides from the environment before starting anything, and what it
prints once everything is up."""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import quote

from config import Settings
from devrun.process import HOST, REPO, private_dir, write_private
from localslack import BOT_TOKEN

DATA = REPO / ".data"


@dataclass(frozen=True)
class DataDir:
    """Where a run keeps its state: .data by default, DEV_DATA_DIR to put it elsewhere."""

    root: Path

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def token_file(self) -> Path:
        return self.root / "api-token"

    @property
    def env_file(self) -> Path:
        return self.root / "dev.env"

    @property
    def snapshot(self) -> Path:
        return self.root / "localslack.json"

    @property
    def database(self) -> Path:
        """The incident archive and the status page, unless INCIDENT_DATABASE_URL says."""
        return self.root / "incidents.db"

    @property
    def temporal_db(self) -> Path:
        return self.root / "temporal.db"

    def shown(self, path: Path) -> str:
        """A path as the user reads it: relative to the repository when inside it."""
        return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


class DevError(Exception):
    """Startup cannot go on; the message says why."""


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
    data: DataDir

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


def _api_token(environ: Mapping[str, str], data: DataDir) -> tuple[str, bool]:
    """The token to print: the first of INCIDENT_API_TOKENS, else one kept in .data/api-token.

    The generated token is kept across runs so an exported INCIDENT_API_TOKEN keeps working
    after a restart; ``make clean`` forgets it.
    """
    configured = Settings(api_tokens=environ.get("INCIDENT_API_TOKENS", "")).api_token_list
    if configured:
        return configured[0], False
    with contextlib.suppress(OSError):
        kept = data.token_file.read_text().strip()
        if kept:
            return kept, True
    token = secrets.token_urlsafe(24)
    private_dir(data.root)
    write_private(data.token_file, token + "\n")
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
    data = DataDir(Path(environ.get("DEV_DATA_DIR") or DATA).resolve())
    token, generated = _api_token(environ, data)
    emulated = not environ.get("SLACK_BOT_TOKEN")

    env = dict(environ)
    env.update(
        PYTHONUNBUFFERED="1",
        TEMPORAL_ADDRESS=f"{HOST}:{ports.temporal}",
        TEMPORAL_NAMESPACE=namespace,
        TEMPORAL_UI_URL=f"http://localhost:{ports.temporal_ui}",
        API_HOST=HOST,
        API_PORT=str(ports.api),
        # The local dev server, not a profile of the operator's Temporal config file (a Cloud
        # profile's API key and TLS would be sent to it and refused).
        TEMPORAL_CONFIG_FILE=os.devnull,
    )
    env.pop("TEMPORAL_PROFILE", None)
    # The worker and the API share one database; `incident db upgrade` runs before each starts.
    env.setdefault("INCIDENT_DATABASE_URL", f"sqlite:///{data.database}")
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
        data=data,
    )


def write_env_file(plan: Plan) -> None:
    write_private(
        plan.data.env_file,
        f"export INCIDENT_API_URL={shlex.quote(plan.api_url)}\n"
        f"export INCIDENT_API_TOKEN={shlex.quote(plan.api_token)}\n",
    )


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
        token_note = f"generated, kept in {plan.data.shown(plan.data.token_file)}"
    rule = "=" * 78
    lines = [
        "",
        rule,
        "  Incident automation is running.  Ctrl-C stops all of it.",
        "",
        f"  Temporal Web UI   {plan.ui_url}",
        f"  sev1 incidents    {plan.ui_url}/namespaces/{ns}/workflows?query={query}",
        f"  Temporal server   {plan.temporal_address}  namespace {ns}, "
        f"data {plan.data.shown(plan.data.temporal_db)}",
        f"  HTTP API          {plan.api_url}   docs {plan.api_url}/docs",
        f"  API token         {plan.api_token}   ({token_note})",
        f"  Slack             {slack}",
        "  Logs              here, prefixed by process, and appended to "
        f"{plan.data.shown(plan.data.logs)}/<name>.log",
        "  Crashes           the emulator, the worker or the API is restarted if it dies",
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
        f"  (`source {plan.data.shown(plan.data.env_file)}` sets INCIDENT_API_URL and "
        "INCIDENT_API_TOKEN for the CLI.)",
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
