"""The dev runner's terminal: the children's logs as they grow, each line under its name."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path


class Console:
    """Copies new lines of the children's logs to the terminal, prefixed with their names."""

    COLOURS = ("36", "35", "33", "32", "34")

    def __init__(self, names: list[str]) -> None:
        self.width = max(len(n) for n in [*names, "dev"])
        self.colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        self.codes = {n: self.COLOURS[i % len(self.COLOURS)] for i, n in enumerate(names)}
        self.codes["dev"] = "1"

    def line(self, name: str, text: str) -> None:
        label = f"{name:<{self.width}} |"
        if self.colour:
            label = f"\x1b[{self.codes.get(name, '0')}m{label}\x1b[0m"
        # The terminal may be gone (window closed): keep stopping children regardless.
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.write(f"{label} {text}\n")
            sys.stdout.flush()

    def say(self, text: str) -> None:
        self.line("dev", text)

    async def follow(self, logs: dict[str, Path]) -> None:
        """Print what is appended to each log from now on, until cancelled."""
        offsets = {name: path.stat().st_size if path.exists() else 0 for name, path in logs.items()}
        pending = dict.fromkeys(logs, b"")
        try:
            while True:
                for name, path in logs.items():
                    chunk = b""
                    with contextlib.suppress(FileNotFoundError), path.open("rb") as log:
                        log.seek(offsets[name])
                        chunk = log.read()
                    if not chunk:
                        continue
                    offsets[name] += len(chunk)
                    *lines, pending[name] = (pending[name] + chunk).split(b"\n")
                    for raw in lines:
                        self.line(name, raw.decode(errors="replace").rstrip("\r"))
                await asyncio.sleep(0.1)
        finally:
            for name, rest in pending.items():
                if rest:
                    self.line(name, rest.decode(errors="replace"))
