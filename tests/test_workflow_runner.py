"""The worker's workflow runner (worker.WORKFLOW_RUNNER): the SDK's sandbox, which answers the
payload codec's per-payload questions outside it, and only when no codec or external storage
would read the answers. Everything else must be the sandbox as it was: restrictions enforced,
a workflow run to its end."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from datetime import timedelta

import pytest
from temporalio import workflow
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowFailureError
from temporalio.converter import PayloadCodec
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker, WorkflowInstance, WorkflowInstanceDetails
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from config.temporal import data_converter
from worker import WORKFLOW_RUNNER, CodecFreeRunner, ContextFree, workflow_runner


@workflow.defn
class Tally:
    """Sleeps, then reads a file, which the sandbox refuses, when ``peek`` is set."""

    @workflow.run
    async def run(self, peek: bool) -> int:
        await workflow.sleep(timedelta(milliseconds=10))
        if peek:
            try:
                with open(__file__) as source:  # noqa: ASYNC230 (the sandbox refuses it)
                    return len(source.read())
            except Exception as refused:
                raise ApplicationError(type(refused).__name__, non_retryable=True) from refused
        return 3


class Reversing(PayloadCodec):
    """A codec that changes the bytes: a worker with one must keep asking for contexts."""

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [Payload(metadata=p.metadata, data=p.data[::-1]) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return await self.encode(payloads)


def test_only_a_worker_without_codec_skips_the_contexts():
    assert workflow_runner(data_converter()) is WORKFLOW_RUNNER
    with_codec = dataclasses.replace(data_converter(), payload_codec=Reversing())
    runner = workflow_runner(with_codec)
    assert isinstance(runner, SandboxedWorkflowRunner)
    assert not isinstance(runner, CodecFreeRunner)
    assert runner.restrictions is WORKFLOW_RUNNER.restrictions


async def test_the_worker_runner_runs_workflows_in_the_sandbox(client: Client):
    queue = f"runner-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=queue, workflows=[Tally], workflow_runner=WORKFLOW_RUNNER):
        run = client.execute_workflow
        assert await run(Tally.run, False, id=f"tally-{queue}", task_queue=queue) == 3
        with pytest.raises(WorkflowFailureError) as failed:
            await run(Tally.run, True, id=f"tally-peek-{queue}", task_queue=queue)
    assert isinstance(failed.value.cause, ApplicationError)
    assert failed.value.cause.message == "RestrictedWorkflowAccessError"


async def test_the_instance_answers_no_context_and_keeps_the_rest():
    instances: list[ContextFree] = []

    class Recording(CodecFreeRunner):
        def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
            instance = super().create_instance(det)
            assert isinstance(instance, ContextFree)
            instances.append(instance)
            return instance

    definition = workflow._Definition.must_from_class(Tally)
    Recording(restrictions=WORKFLOW_RUNNER.restrictions).prepare_workflow(definition)
    [instance] = instances
    assert instance.get_serialization_context(None) is None
    assert instance.get_external_store_context(None).target is None
    assert instance.get_info() is instance.sandboxed.get_info()
    assert instance.get_thread_id() is None  # no activation running
