"""``python -m bench`` (``make bench``): the benchmark harnesses and how to run each.

Each harness starts its own stack on free 127.0.0.1 ports and prints its figures; they take
minutes to tens of minutes, so they are run one at a time, by name.
"""

from __future__ import annotations

import importlib

HARNESSES = ("declare", "intake", "listing", "timers", "replay", "oncall", "automations")


def usage(name: str) -> str:
    """A harness's summary line and the command lines its docstring shows."""
    doc = importlib.import_module(f"bench.{name}").__doc__ or ""
    lines = doc.strip().splitlines()
    commands = [line.strip() for line in lines if line.strip().startswith("python -m bench.")]
    return "\n".join([f"{name}: {lines[0]}", *(f"    .venv/bin/{c}" for c in commands)])


def main() -> None:
    print("Benchmark harnesses (docs/performance.md has the figures they produced):\n")
    print("\n\n".join(usage(name) for name in HARNESSES))


if __name__ == "__main__":
    main()
