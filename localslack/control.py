"""What tests see and steer: the record of calls, and faults to inject. And the workspace kept
on disk, so channels outlive a restart of the emulator.

Temporal keeps every incident across restarts of ``make run``; without the snapshot, the emulator
would come back empty and old incidents would meet ``channel_not_found``. The snapshot is a
JSON file, written (owner-only, replaced at once) at most twice a second after calls arrive,
and once more at shutdown.
"""

import asyncio
import contextlib
import json
import os
import random
import sys
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import SlackError
from .posts import Channel, Pin, Setter
from .seed import TEAM_ID, TEAM_NAME
from .workspace import Workspace


@dataclass(frozen=True)
class Call:
    method: str
    args: dict[str, Any]
    ok: bool
    error: str | None
    at: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Fault:
    """The next `times` calls of `method` fail this way.

    status 429 (or error "ratelimited") answers like Slack's rate limiter, with a
    Retry-After header; a 5xx status answers with an HTTP error page, as a failing Slack
    edge does; otherwise the call gets `{"ok": false, "error": error}` with HTTP 200.

    `commit` first does the call for real and then fails it anyway: Slack did the work and
    the answer was lost. `drop` closes the connection instead of answering. `delay` holds
    the answer that many seconds first, as a Slack that hangs does; alone, the call then
    answers as usual.
    """

    method: str
    error: str | None = None
    status: int | None = None
    retry_after: int = 1
    times: int = 1
    commit: bool = False
    drop: bool = False
    delay: float = 0.0

    def __post_init__(self) -> None:
        if self.error is None and self.status is None and not self.drop and not self.delay:
            raise ValueError("a fault needs an error, a status, a drop, a delay or some of them")
        if self.status is not None and not 400 <= self.status <= 599:
            raise ValueError(f"fault status must be an HTTP error status, not {self.status}")
        if self.times < 1 or self.retry_after < 0 or not 0 <= self.delay <= 300:
            raise ValueError("times must be >= 1, retry_after >= 0, delay 0 to 300 s")

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> "Fault":
        known = {f.name for f in fields(cls)}
        unknown = set(body) - known
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        return cls(**body)

    @property
    def only_delays(self) -> bool:
        return self.error is None and self.status is None and not self.drop

    @property
    def is_server_error(self) -> bool:
        return self.status is not None and self.status >= 500

    @property
    def code(self) -> str:
        """The error recorded for a call this fault answered."""
        if self.drop:
            return "connection_dropped"
        if self.error:
            return self.error
        return "ratelimited" if self.status == 429 else f"http_{self.status}"

    def as_error(self) -> SlackError:
        """Slack's answer for any fault but a 5xx."""
        if self.status == 429 or (self.status is None and self.error == "ratelimited"):
            return SlackError(self.code, status=429, retry_after=self.retry_after)
        return SlackError(self.code, status=self.status or 200)


@dataclass
class FaultBook:
    """Armed faults, one queue entry per failing call, consumed in order per method."""

    _armed: dict[str, deque[Fault]] = field(default_factory=dict)

    def arm(self, fault: Fault) -> None:
        self._armed.setdefault(fault.method, deque()).extend([fault] * fault.times)

    def take(self, method: str) -> Fault | None:
        queue = self._armed.get(method)
        return queue.popleft() if queue else None

    def clear(self) -> None:
        self._armed.clear()


# The last part of the name of a method that only reads; every other method writes.
READ_VERBS = frozenset({"test", "list", "info", "history", "replies", "members", "lookupByEmail"})


def is_write(method: str) -> bool:
    return method.rsplit(".", 1)[-1] not in READ_VERBS


@dataclass
class Chaos:
    """A share of all successful writes commits and then fails: half answer 503, half drop
    the connection. Seeded, so a failing test run can be replayed."""

    rate: float
    seed: int = 0
    hits: int = field(default=0, init=False)  # writes it failed after they committed
    _random: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0 <= self.rate <= 1:
            raise ValueError(f"chaos rate must be between 0 and 1, not {self.rate}")
        self._random = random.Random(self.seed)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> "Chaos":
        unknown = set(body) - {"rate", "seed"}
        if unknown:
            raise ValueError(f"unknown chaos fields: {sorted(unknown)}")
        return cls(rate=float(body["rate"]), seed=int(body.get("seed", 0)))

    def fault(self, method: str) -> Fault | None:
        """The fault that hits this write after it committed, if any."""
        if not is_write(method) or self._random.random() >= self.rate:
            return None
        self.hits += 1
        if self._random.random() < 0.5:
            return Fault(method, status=503, commit=True)
        return Fault(method, drop=True, commit=True)


def workspace_state(ws: Workspace) -> dict[str, Any]:
    """Everything the workspace holds, for out-of-process tests and debugging."""
    return {
        "team": {"id": TEAM_ID, "name": TEAM_NAME},
        "channels": [
            {
                "id": c.id,
                "name": c.name,
                "is_private": c.is_private,
                "is_im": c.is_im,
                "is_mpim": c.is_mpim,
                "archived": c.is_archived,
                "created": c.created,
                "creator": c.creator,
                "topic": c.topic,
                "purpose": c.purpose,
                "members": list(c.members),
                "pins": list(c.pins),
                "bookmarks": c.bookmarks,
                "messages": c.messages,
            }
            for c in ws.channels.values()
        ],
        "users": [u.to_json() for u in ws.users.values()],
        "usergroups": [g.to_json(include_users=True) for g in ws.user_groups.values()],
        "canvases": list(ws.canvases.values()),
    }


VERSION = 1
SAVE_INTERVAL = 0.5


def dump(workspace: Workspace) -> dict[str, Any]:
    channels = []
    for channel in workspace.channels.values():
        data = {f.name: getattr(channel, f.name) for f in fields(channel) if f.name != "by_ts"}
        data["set_by"] = {kind: list(setter) for kind, setter in channel.set_by.items()}
        data["pins"] = {ts: list(pin) for ts, pin in channel.pins.items()}
        channels.append(data)
    return {
        "version": VERSION,
        "channels": channels,
        "direct": [[sorted(members), cid] for members, cid in workspace._direct.items()],
        "ids": sorted(workspace._ids),
        "last_stamp": workspace._last_stamp,
        "canvases": workspace.canvases,
        # The groups are the seed's; who is in them changes (usergroups.users.update).
        "user_groups": {gid: list(g.users) for gid, g in workspace.user_groups.items()},
    }


def restore(workspace: Workspace, data: dict[str, Any]) -> None:
    """Replace the workspace's conversations with the snapshot's (users are the seed's)."""
    if data.get("version") != VERSION:
        raise ValueError(f"snapshot version {data.get('version')!r}, expected {VERSION}")
    channels: dict[str, Channel] = {}
    for raw in data["channels"]:
        raw = dict(raw)
        raw["set_by"] = {kind: Setter(*value) for kind, value in raw["set_by"].items()}
        raw["pins"] = {ts: Pin(*value) for ts, value in raw["pins"].items()}
        channel = Channel(**raw)
        channel.by_ts = {message["ts"]: message for message in channel.messages}
        channels[channel.id] = channel
    workspace.channels = channels
    workspace._names = {c.name: c.id for c in channels.values() if c.is_channel}
    workspace._direct = {frozenset(members): cid for members, cid in data["direct"]}
    workspace._ids = set(data["ids"])
    workspace._last_stamp = int(data["last_stamp"])
    workspace.canvases = data["canvases"]
    for gid, users in data.get("user_groups", {}).items():  # absent from older snapshots
        if gid in workspace.user_groups:
            workspace.user_groups[gid] = replace(workspace.user_groups[gid], users=tuple(users))


def save(workspace: Workspace, path: Path) -> None:
    text = json.dumps(dump(workspace), separators=(",", ":"), default=str)
    aside = path.with_name(f".{path.name}.tmp")
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(aside, path)


def load(workspace: Workspace, path: Path) -> bool:
    """Restore from ``path`` if it exists; a damaged file is set aside, not fatal."""
    try:
        data = json.loads(path.read_text())
        restore(workspace, data)
    except FileNotFoundError:
        return False
    except (ValueError, KeyError, TypeError) as error:
        damaged = path.with_name(path.name + ".damaged")
        os.replace(path, damaged)
        print(f"localslack: {path} unreadable ({error}); moved to {damaged}", file=sys.stderr)
        return False
    return True


class Snapshots:
    """Saves the emulator's workspace to ``path`` whenever calls have come in since the last
    save (any call may have changed it), checked every ``SAVE_INTERVAL`` seconds."""

    def __init__(self, emulator: Any, path: Path) -> None:
        self.emulator = emulator
        self.path = path
        self._seen: tuple[int, int] = self._mark()

    def _mark(self) -> tuple[int, int]:
        # A reset replaces the workspace and clears the calls: its identity changes.
        return id(self.emulator.workspace), len(self.emulator.calls)

    def save_if_changed(self) -> None:
        mark = self._mark()
        if mark != self._seen:
            save(self.emulator.workspace, self.path)
            self._seen = mark

    async def run(self) -> None:
        try:
            while True:
                await asyncio.sleep(SAVE_INTERVAL)
                self.save_if_changed()
        finally:
            with contextlib.suppress(OSError):
                self.save_if_changed()
