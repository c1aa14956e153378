"""IncidentDesk: the one facade every entry point uses to reach incidents in Temporal.

declare / command / get / list. The API, the Slack app and the CLI never talk to Temporal (or
Slack) any other way, so they all answer with the same real state.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from workflows import commands as cmd
from workflows.incident import IncidentInput, IncidentWorkflow
from workflows.models import Declaration, IncidentState, Status, incident_id, parse_incident_ref
from workflows.policy import Policy
from workflows.registry import REGISTRY_ID, IncidentRegistry, RegistryState, Reservation
from workflows.visibility import declared_search_attributes

LIST_CONCURRENCY = 16

# Which workflow Update carries which command.
UPDATES: dict[type[cmd.Command], Any] = {
    cmd.Acknowledge: IncidentWorkflow.acknowledge,
    cmd.SetStatus: IncidentWorkflow.set_status,
    cmd.PostUpdate: IncidentWorkflow.post_update,
    cmd.SetSeverity: IncidentWorkflow.set_severity,
    cmd.AssignRole: IncidentWorkflow.assign_role,
    cmd.AddResponders: IncidentWorkflow.add_responders,
    cmd.Escalate: IncidentWorkflow.escalate,
    cmd.Resolve: IncidentWorkflow.resolve,
    cmd.Reopen: IncidentWorkflow.reopen,
    cmd.AddActionItem: IncidentWorkflow.add_action_item,
    cmd.CompleteActionItem: IncidentWorkflow.complete_action_item,
    cmd.CompleteRetrospective: IncidentWorkflow.complete_retrospective,
    cmd.AssignActionItem: IncidentWorkflow.assign_action_item,
    cmd.SetActionItemDue: IncidentWorkflow.set_action_item_due,
    cmd.DropActionItem: IncidentWorkflow.drop_action_item,
}


class IncidentNotFound(LookupError):
    pass


class CommandRefused(Exception):
    """The incident refused the command; the message says why, in words for people."""


def apply_template(declaration: Declaration, policy: Policy) -> Declaration:
    """Fill what the declaration left out from its template; what it says wins."""
    if not declaration.template:
        return declaration
    template = policy.templates.get(declaration.template)
    if template is None:
        known = ", ".join(policy.templates) or "none"
        raise ValueError(f"unknown template {declaration.template!r}; known: {known}")
    given = declaration.model_fields_set
    filled = {
        field: value
        for field, value in template.model_dump(exclude_none=True).items()
        if field not in given and value not in ([], "")
    }
    return declaration.model_copy(update=filled)


class IncidentDesk:
    def __init__(self, client: Client, task_queue: str, policy: Policy) -> None:
        self.client = client
        self.task_queue = task_queue
        self.policy = policy

    async def declare(self, declaration: Declaration) -> tuple[IncidentState, bool]:
        """Declare, or find the open incident with the same idempotency key.

        Returns the incident (once its channel exists) and whether it was created now.
        """
        declaration = apply_template(declaration, self.policy)
        self.policy.severity(declaration.severity)  # refuse before a number is spent
        reserved = await self.client.execute_update_with_start_workflow(
            IncidentRegistry.reserve,
            Reservation(idempotency_key=declaration.idempotency_key),
            start_workflow_operation=WithStartWorkflowOperation(
                IncidentRegistry.run,
                RegistryState(),
                id=REGISTRY_ID,
                task_queue=self.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            ),
        )
        number = reserved.number
        label = f"INC-{number} {declaration.severity.upper()} {declaration.title}"
        # USE_EXISTING makes this safe to repeat: a retried declaration (or one whose key
        # already has an incident) reaches the same workflow instead of a second one.
        state = await self.client.execute_update_with_start_workflow(
            IncidentWorkflow.opening,
            start_workflow_operation=WithStartWorkflowOperation(
                IncidentWorkflow.run,
                IncidentInput(number=number, policy=self.policy, declaration=declaration),
                id=incident_id(number),
                task_queue=self.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=label,
                search_attributes=declared_search_attributes(
                    number, declaration.severity, declaration.commander or declaration.declared_by
                ),
            ),
        )
        return state, not reserved.existing

    async def command(self, ref: str, command: cmd.Command) -> IncidentState:
        handle = self.client.get_workflow_handle(parse_incident_ref(ref))
        try:
            state: IncidentState = await handle.execute_update(
                UPDATES[type(command)], command, result_type=IncidentState
            )
        except WorkflowUpdateFailedError as error:
            raise CommandRefused(_reason(error)) from error
        except RPCError as error:
            raise self._rpc_error(ref, error) from error
        return state

    async def get(self, ref: str) -> IncidentState:
        handle = self.client.get_workflow_handle(parse_incident_ref(ref))
        try:
            # The typed query decodes by the method's return type, IncidentState.
            return await handle.query(IncidentWorkflow.snapshot)
        except RPCError as error:
            raise self._rpc_error(ref, error) from error

    async def list(
        self,
        *,
        status: Status | None = None,
        severity: str | None = None,
        open: bool | None = None,
        limit: int = 100,
    ) -> list[IncidentState]:
        """Newest first, found through the search attributes the workflows keep current."""
        clauses = ["WorkflowType = 'IncidentWorkflow'"]
        if status is not None:
            clauses.append(f"IncidentStatus = '{status.value}'")
        if severity is not None:
            clauses.append(f"IncidentSeverity = '{_quote(severity)}'")
        if open is True:
            clauses.append("IncidentStatus != 'resolved'")
            clauses.append("ExecutionStatus = 'Running'")
        elif open is False:
            clauses.append("IncidentStatus = 'resolved'")
        ids = [
            execution.id
            async for execution in self.client.list_workflows(" AND ".join(clauses), limit=limit)
            if execution.status != WorkflowExecutionStatus.TERMINATED
        ]
        gate = asyncio.Semaphore(LIST_CONCURRENCY)

        async def fetch(workflow_id: str) -> IncidentState | None:
            async with gate:
                try:
                    return await self.get(workflow_id)
                except IncidentNotFound:
                    return None

        found = await asyncio.gather(*(fetch(i) for i in ids))
        incidents = [state for state in found if state is not None]
        return sorted(incidents, key=lambda s: s.number, reverse=True)

    @staticmethod
    def _rpc_error(ref: str, error: RPCError) -> Exception:
        if error.status == RPCStatusCode.NOT_FOUND:
            if "completed" in error.message or "closed" in error.message:
                return CommandRefused(f"{ref} is closed (its channel is archived)")
            return IncidentNotFound(f"no incident {ref}")
        return error


def _reason(error: WorkflowUpdateFailedError) -> str:
    cause = error.cause
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause or error)


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")
