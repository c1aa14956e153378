"""Upgrades by Worker Versioning: two builds of the worker side by side on one task queue.

An incident declared while build b1 is current runs on b1 to its end, even after the operator
makes b2 current (``temporal worker deployment set-current-version``, the same CLI operators
run); an incident declared after that runs on b2. One declared before any worker ran (the API
starts workflows by itself) waits, then runs on the first version made current.
"""

from __future__ import annotations

import asyncio
import uuid
from contextlib import AsyncExitStack

import httpx
from temporalio import workflow
from temporalio.api.enums.v1 import EventType, VersioningBehavior
from temporalio.api.workflowservice.v1 import DescribeWorkerDeploymentRequest
from temporalio.client import Client
from temporalio.worker import Worker

import devrun as supervisor
from config import Settings
from starter.desk import IncidentDesk
from tests.conftest import seconds_policy
from tests.support import until
from workflows.lifecycle import commands as cmd
from workflows.models import Declaration, IncidentState


async def builds_that_ran(client: Client, incident_id: str, run_id: str | None = None) -> set[str]:
    """The build id of every workflow task the incident's (latest) run completed."""
    history = await client.get_workflow_handle(incident_id, run_id=run_id).fetch_history()
    return {
        e.workflow_task_completed_event_attributes.deployment_version.build_id
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    }


async def pinned_to(client: Client, incident_id: str) -> tuple[str, str]:
    """What describe() says of the incident's versioning: its build and its behaviour."""
    described = await client.get_workflow_handle(incident_id).describe()
    info = described.raw_description.workflow_execution_info.versioning_info
    return info.deployment_version.build_id, VersioningBehavior.Name(info.behavior)


async def set_current_version(client: Client, deployment: str, build_id: str) -> str:
    """What an operator runs to roll a new build out, once the server has seen the new build
    poll every task queue of the current one (it refuses until then)."""
    for _ in range(60):
        done, output = await _set_current_version(client, deployment, build_id)
        if done or "missing active task queues" not in output:
            break
        await asyncio.sleep(0.5)
    assert done, output
    return output


async def _set_current_version(client: Client, deployment: str, build_id: str) -> tuple[bool, str]:
    process = await asyncio.create_subprocess_exec(
        supervisor.temporal_binary(),
        "worker",
        "deployment",
        "set-current-version",
        "--address",
        client.service_client.config.target_host,
        "--deployment-name",
        deployment,
        "--build-id",
        build_id,
        "--yes",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    return process.returncode == 0, output.decode()


async def test_an_incident_finishes_on_its_build_while_new_ones_start_on_the_current_one(
    client: Client, settings: Settings
) -> None:
    from worker import build_worker

    deployment = f"incidents-{uuid.uuid4().hex[:8]}"
    queue = f"versioning-{uuid.uuid4().hex[:8]}"
    policy = seconds_policy(archive_after=0.5)
    for severity in policy.severities.values():
        severity.retrospective.required = False  # resolved, it archives and ends at once
    desk = IncidentDesk(client, queue, policy)

    def build(build_id: str) -> Settings:
        update = {"task_queue": queue, "deployment_name": deployment, "build_id": build_id}
        return settings.model_copy(update=update)

    early = (await desk.accept(Declaration(title="Before any worker", severity="sev2"))).state
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx.AsyncClient())
        # b1 is the deployment's first version: it makes itself current.
        await stack.enter_async_context(build_worker(client, build("b1"), http))
        old, _ = await desk.declare(Declaration(title="On the old build", severity="sev2"))
        assert old.channel is not None
        assert await until(lambda: desk.get(early.id), lambda s: s.channel is not None)
        # b2 polls beside it; a deployment with a current version waits for the operator.
        await stack.enter_async_context(build_worker(client, build("b2"), http))
        print(await set_current_version(client, deployment, "b2"))
        new, _ = await desk.declare(Declaration(title="On the new build", severity="sev2"))
        assert new.channel is not None

        for incident in (early, old, new):
            await desk.command(incident.id, cmd.Acknowledge(by="U0ALICE01"))
            await desk.command(incident.id, cmd.Resolve(message="fixed"))
        finished = await asyncio.gather(
            *(
                client.get_workflow_handle(i.id, result_type=IncidentState).result()
                for i in (early, old, new)
            )
        )
        assert all(state.archived_at is not None for state in finished)

        ran = {i.id: await builds_that_ran(client, i.id) for i in (early, old, new)}
        described = {i.id: await pinned_to(client, i.id) for i in (early, old, new)}
        for incident in (early, old, new):
            print(
                f"{incident.label} {incident.title!r}: workflow tasks completed on "
                f"{sorted(ran[incident.id])}; describe(): build {described[incident.id][0]}, "
                f"behaviour {described[incident.id][1]}"
            )
        assert ran == {early.id: {"b1"}, old.id: {"b1"}, new.id: {"b2"}}
        assert described == {
            early.id: ("b1", "VERSIONING_BEHAVIOR_PINNED"),
            old.id: ("b1", "VERSIONING_BEHAVIOR_PINNED"),
            new.id: ("b2", "VERSIONING_BEHAVIOR_PINNED"),
        }


@workflow.defn(name="OldIncident")
class OldIncident:
    """Stands for a 0.1 incident: unversioned, and its patches set TemporalChangeVersion."""

    @workflow.run
    async def run(self) -> None:
        workflow.patched("lean-opening")
        await workflow.wait_condition(lambda: False)


async def test_a_new_build_leaves_routing_to_the_operator_while_0_1_incidents_run(
    client: Client, settings: Settings
) -> None:
    """Temporal moves unversioned workflows to the first current version, whose code could
    not replay a 0.1 incident: the worker does not make itself current then."""
    from config.deployment import CurrentVersion
    from worker import WORKFLOW_RUNNER, build_worker

    deployment = f"incidents-{uuid.uuid4().hex[:8]}"
    queue = f"from-0-1-{uuid.uuid4().hex[:8]}"
    update = {"task_queue": queue, "deployment_name": deployment, "build_id": "b1"}
    ours = settings.model_copy(update=update)
    old_build = Worker(
        client, task_queue=queue, workflows=[OldIncident], workflow_runner=WORKFLOW_RUNNER
    )
    async with old_build:
        old = await client.start_workflow(OldIncident.run, id=f"old-{queue}", task_queue=queue)
        await until(lambda: builds_that_ran(client, old.id), lambda b: b == {""})
        async with httpx.AsyncClient() as http, build_worker(client, ours, http):
            await CurrentVersion(client, ours).become_current()
            described = await client.workflow_service.describe_worker_deployment(
                DescribeWorkerDeploymentRequest(
                    namespace=client.namespace, deployment_name=deployment
                )
            )
        await old.terminate()
    routing = described.worker_deployment_info.routing_config
    assert routing.current_deployment_version.build_id == ""
