"""Schemathesis against the API's own OpenAPI document: whatever the schema allows (and a good
deal it does not), the API answers without a 5xx, with a documented status and a body of the
documented shape. The stack runs as processes (emulator, worker, API) beside the session's
dev server, since these tests are synchronous and would starve in-process servers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.processes import ApiProcess, DevServer, EmulatorProcess, Processes, WorkerProcess
from tests.support import local_smtp

TOKEN = "fuzz-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
EXAMPLES = 20  # per operation, a few hundred requests in all: the suite stays short
QUEUE = "incidents-fuzz"


@pytest.fixture(scope="module")
def api_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    logs = tmp_path_factory.mktemp("fuzz")
    processes = Processes()
    smtp: dict[str, str] = {}

    async def start() -> str:
        # A server of its own: the session's incidents belong to an in-process worker, which
        # a synchronous test starves, so commands to them would wait instead of answering.
        server = DevServer(None, logs / "temporal.log")
        processes.track(server.process)
        await server.start()
        address = server.address
        slack = await EmulatorProcess(logs / "localslack.log").started()
        processes.track(slack)
        worker = WorkerProcess(
            logs / "worker.log",
            temporal_address=address,
            task_queue=QUEUE,
            slack_api_url=slack.base_url,
        )
        processes.track(worker)
        await worker.started()
        api = ApiProcess(
            logs / "api.log",
            temporal_address=address,
            env={
                "INCIDENT_API_TOKENS": TOKEN,
                "INCIDENT_TASK_QUEUE": QUEUE,
                "SLACK_API_URL": slack.base_url,
                "INCIDENT_DATABASE_URL": f"sqlite:///{logs}/incidents.db",
                "INCIDENT_SMTP_HOST": "127.0.0.1",
                "INCIDENT_SMTP_PORT": smtp["port"],
            },
        )
        processes.track(api)
        await api.started()
        return api.url

    try:
        with local_smtp() as mail:  # subscribers' confirmations go out, as in production
            smtp["port"] = str(mail.port)
            yield asyncio.new_event_loop().run_until_complete(start())
    finally:
        processes.stop_all()


def test_the_api_keeps_its_openapi_promises(api_url: str) -> None:
    schema = schemathesis.openapi.from_url(f"{api_url}/openapi.json")
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20, "the whole API is fuzzed"
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def keeps_promises(case: Any) -> None:
            case.call_and_validate(headers=AUTH, timeout=30, checks=checks)

        keeps_promises()
