"""Schemathesis against the API's own OpenAPI document, with every check and every phase: the
API takes what the schema allows, refuses what it does not, answers without a 5xx, with a
documented status, headers and a body of the documented shape, and names every method of a
path in a 405's Allow. The stack runs as processes (emulator, worker, API) beside the session's
dev server, since these tests are synchronous and would starve in-process servers.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis

from tests.processes import ApiProcess, DevServer, EmulatorProcess, Processes, WorkerProcess
from tests.support import local_smtp

TOKEN = "fuzz-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# Per operation and phase: about 2,000 requests in all, under a minute on 2 cores. The seed makes
# CI's run the same each time; change it to explore (`st run --seed`) and keep what it finds.
EXAMPLES = 8
SEED = 20261205
QUEUE = "incidents-fuzz"
# The built-in severities, one schedule, named as the on-call routes' example names it, and
# one incident type that allows two of the severities and fills its commander from the rota.
POLICY = """
[severities.sev1]
[severities.sev2]
[severities.sev3]

[types.security]
severities = ["sev1", "sev2"]
roles = { commander = "oncall:payments" }

[schedules.payments]
timezone = "Europe/Paris"
people = ["U0ALICE01", "U0BOB0002"]
shift = "1d"
start = "2026-12-07T09:00:00+01:00"
"""


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
        # One on-call schedule, so the on-call routes answer from a running schedule workflow.
        policy = logs / "policy.toml"
        policy.write_text(POLICY)
        worker = WorkerProcess(
            logs / "worker.log",
            temporal_address=address,
            task_queue=QUEUE,
            slack_api_url=slack.base_url,
            env={"INCIDENT_POLICY_FILE": str(policy)},
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
                "INCIDENT_POLICY_FILE": str(policy),
                # On, so its signature check (401) is what the fuzzers meet, not the 404.
                "INCIDENT_PAGERDUTY_WEBHOOK_SECRET": "fuzz-pagerduty-signing-secret",
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


def test_the_api_keeps_its_openapi_promises(api_url: str, tmp_path: Path) -> None:
    """Every check and every phase: examples, coverage (boundaries and each way to be wrong),
    fuzzing, and stateful runs that follow the links between answers."""
    schema = schemathesis.openapi.from_url(f"{api_url}/openapi.json")
    assert len([r for r in schema.get_all_operations() if r.ok()]) > 20, "the whole API"
    command = [
        str(Path(sys.executable).with_name("st")),
        f"--config-file={Path(__file__).with_name('schemathesis.toml')}",
        "run",
        f"{api_url}/openapi.json",
        "--checks=all",
        "--phases=examples,coverage,fuzzing,stateful",
        f"--header=Authorization: Bearer {TOKEN}",
        f"--max-examples={EXAMPLES}",
        f"--seed={SEED}",
        "--generation-database=none",
        "--request-timeout=30",
        "--continue-on-failure",
        "--no-color",
    ]
    started = time.monotonic()
    # Run elsewhere: st keeps a cache of past findings in its working directory.
    run = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False
    )
    took = time.monotonic() - started
    assert run.returncode == 0, run.stdout[-20_000:] + run.stderr[-2_000:]
    assert " passed" in run.stdout and "failures" not in run.stdout, run.stdout[-5_000:]
    counted = next((line for line in run.stdout.splitlines() if "generated" in line), "")
    print(f"schemathesis: {counted.strip()} ({took:.0f} s)")
