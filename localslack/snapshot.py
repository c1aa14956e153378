"""The workspace kept on disk, so channels outlive a restart of the emulator.

Temporal keeps every incident across restarts of ``make run``; without this, the emulator
would come back empty and old incidents would meet ``channel_not_found``. The snapshot is a
JSON file, written (owner-only, replaced at once) at most twice a second after calls arrive,
and once more at shutdown.
"""

import asyncio
import contextlib
import json
import os
import sys
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from .posts import Channel, Pin, Setter
from .workspace import Workspace

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
