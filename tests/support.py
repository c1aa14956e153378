"""Helpers the tests share: waiting on what Slack received, starting the registry."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy

from workflows.registry import REGISTRY_ID, IncidentRegistry, RegistryState

T = TypeVar("T")


async def ensure_registry(client: Client, task_queue: str) -> None:
    """Start the numbering registry on the session worker's queue before any test declares."""
    await client.start_workflow(
        IncidentRegistry.run,
        RegistryState(),
        id=REGISTRY_ID,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


async def eventually(
    probe: Callable[[], T | None], timeout: float = 10.0, interval: float = 0.05
) -> T:
    """Wait until ``probe`` returns something truthy; fail with what it last saw."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")


async def until(
    probe: Callable[[], Awaitable[T]], accept: Callable[[T], bool], timeout: float = 10.0
) -> bool:
    """Poll an async probe (a visibility query, say) until ``accept`` likes its answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if accept(await probe()):
            return True
        await asyncio.sleep(0.1)
    return False
