"""IncidentDesk: the one facade every entry point uses to reach incidents in Temporal.

declare / command / get / list. The API, the Slack app and the CLI never talk to Temporal (or
Slack) any other way, so they all answer with the same real state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import structlog
from temporalio.client import Client, RPCTimeoutOrCancelledError, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from clients.slack_people import SlackPeople
from starter.command_table import row_of
from starter.intake import Intake
from starter.reading import ListFilter, NoWorkerAnswered, Page, current_state, list_page
from workflows.alerts.folding import AlertSignal
from workflows.incident import IncidentWorkflow
from workflows.incident_types import Action
from workflows.lifecycle import commands as cmd
from workflows.lifecycle.commands import complete
from workflows.lifecycle.notices import CommandRefused, PermissionRefused, require_permission
from workflows.lifecycle.rules import permission
from workflows.lifecycle.visibility import (
    INCIDENT_CHANNEL,
    INCIDENT_CHANNEL_ID,
    IncidentSummary,
    incidents_where,
    summarize,
    where,
)
from workflows.models import DeclarationRequest, IncidentState, Status
from workflows.policy import Policy
from workflows.text import incident_id, parse_incident_ref

log = structlog.get_logger()

# What ``declare`` waits for the channel by default; the API waits only when asked.
WAIT_FOR_CHANNEL = timedelta(seconds=10)


@dataclass
class Accepted:
    state: IncidentState
    created: bool  # False: an open incident already held the idempotency key
    opened: bool  # its channel exists (or creating it failed, which its timeline says)


class IncidentNotFound(LookupError):
    pass


Sees = Callable[[IncidentState], bool]  # whether a reader may see this private incident


def nobody(_: IncidentState) -> bool:
    return False


async def permit(policy: Policy, people: SlackPeople, action: Action, by: str | None) -> None:
    """``PermissionRefused`` unless ``by`` may do ``action``, one done outside any incident
    (declare, schedules, tokens), so no role counts; nobody (a service token's, an alert's) is
    the product acting."""
    permissions = policy.permissions
    found = await people.answers_to(by, permissions.lookups(action)) if by else []
    require_permission(permissions, action, by, found)


class IncidentDesk:
    def __init__(
        self,
        client: Client,
        task_queue: str,
        policy: Policy,
        intake: Intake | None = None,
        people: SlackPeople | None = None,
    ) -> None:
        self.client = client
        self.task_queue = task_queue
        self.policy = policy
        # Who stands for whom in the policy's [permissions]; without Slack, ids only.
        self.people = people or SlackPeople(None)
        # Desks with different policies may share one intake, and so one run of numbers.
        self.intake = intake or Intake(client, task_queue)
        self.wait_for_channel = WAIT_FOR_CHANNEL  # what the API's ``wait`` waits at most

    async def declare(
        self, declaration: DeclarationRequest, wait: timedelta | None = WAIT_FOR_CHANNEL
    ) -> tuple[IncidentState, bool]:
        """Declare, or find the open incident with the same idempotency key.

        Returns the incident and whether it was created now; by default once its channel
        exists (or ``wait`` ran out), see ``accept``.
        """
        accepted = await self.accept(declaration, wait=wait)
        return accepted.state, accepted.created

    async def accept(self, request: DeclarationRequest, wait: timedelta | None = None) -> Accepted:
        """Durable on return, worker or not; with ``wait``, also waits that long for the channel.

        Every entry point's request is completed from its template here (``complete``, the one
        completion) and checked first (``InvalidDeclaration`` names the field; who declares
        against ``[permissions] declare``), so a refused declaration spends no incident
        number."""
        declaration = complete(request, self.policy)
        await permit(self.policy, self.people, "declare", declaration.declared_by)
        taken = await self.intake.take(declaration, self.policy, opening=wait)
        if taken.opened and taken.state is not None:
            return Accepted(state=taken.state, created=True, opened=True)
        ref = incident_id(taken.number)
        if wait is not None and not taken.created:
            try:
                return await asyncio.wait_for(self._found_opened(ref), wait.total_seconds())
            except (TimeoutError, RPCTimeoutOrCancelledError):
                pass  # no worker made the channel in time: answer with the incident as it is
        state = taken.state or await self.get(ref)
        return Accepted(state=state, created=taken.created, opened=False)

    async def _found_opened(self, ref: str) -> Accepted:
        """Another declaration with the same key created it: poll (which costs the workflow
        nothing) until its channel exists; its creator's Update is the one that opens it."""
        while True:
            state = await self.get(ref)
            if state.channel is not None:
                return Accepted(state=state, created=False, opened=True)
            await asyncio.sleep(0.2)

    async def command(
        self, ref: str, command: cmd.Command, request_key: str | None = None
    ) -> IncidentState:
        """``request_key`` names a request its client may retry: it is applied once, even when
        the retry reaches a later run of the incident (``workflows.lifecycle.visibility``)."""
        row = row_of(command)
        command = command.model_copy(update={"answers_to": await self._answers_to(command)})
        handle = self.client.get_workflow_handle_for(IncidentWorkflow.run, parse_incident_ref(ref))
        update_id = f"{row.name}:{request_key}" if request_key else None
        try:
            state: IncidentState = await handle.execute_update(row.update, command, id=update_id)
        except WorkflowUpdateFailedError as error:
            raise _refusal(error) from error
        except RPCError as error:
            raise self._rpc_error(ref, error) from error
        return state

    async def _answers_to(self, command: cmd.Command) -> list[str]:
        """What the workflow's permission check needs from Slack: the grantees that stand for
        who acts (a client's own say is never taken)."""
        action = permission(command)
        if action is None or command.by is None:
            return []
        return await self.people.answers_to(command.by, self.policy.permissions.lookups(action))

    async def open_incident_for(self, idempotency_key: str) -> str | None:
        """The id of the open incident holding this key, if one does."""
        held = await self.intake.holder(idempotency_key)
        return incident_id(held.number) if held else None

    async def signal_alerts(self, ref: str, signal: AlertSignal) -> None:
        """Alerts of an incident's group, as a signal: durable once Temporal has it."""
        handle = self.client.get_workflow_handle(parse_incident_ref(ref))
        try:
            await handle.signal(IncidentWorkflow.alert, signal)
        except RPCError as error:
            raise self._rpc_error(ref, error) from error

    async def get(self, ref: str) -> IncidentState:
        handle = self.client.get_workflow_handle(parse_incident_ref(ref))
        try:
            described = await handle.describe()
            return await current_state(self.client, handle, described)
        except RPCError as error:
            raise self._rpc_error(ref, error) from error

    async def page(
        self,
        filters: ListFilter,
        page_size: int = 100,
        token: bytes | None = None,
        sees: Sees = nobody,
    ) -> Page:
        """One page, newest first within it, from visibility alone (memo + search attributes);
        a private incident (its memo a stand-in) read from itself, shown only if ``sees`` it."""
        page = await list_page(self.client, filters, page_size, token)
        private = [incident.id for incident in page.incidents if incident.private]
        if private:
            states = await asyncio.gather(*map(self._readable, private))
            readable = {s.id: s for s in states if s is not None}
            # Fail closed: a private incident that cannot say who its members are right now
            # (its worker down) is left out of this page rather than failing the whole list.
            page.incidents = [
                summarize(readable[i.id]) if i.private else i
                for i in page.incidents
                if not i.private or (i.id in readable and sees(readable[i.id]))
            ]
        return page

    async def _readable(self, ref: str) -> IncidentState | None:
        try:
            return await self.get(ref)
        except (RPCError, NoWorkerAnswered, IncidentNotFound, CommandRefused) as error:
            log.warning("private_incident_unreadable", incident=ref, error=str(error))
            return None

    async def list(
        self,
        *,
        status: Status | None = None,
        severity: str | None = None,
        open: bool | None = None,
        commander: str | None = None,
        text: str | None = None,
        limit: int = 100,
        sees: Sees = nobody,
    ) -> list[IncidentSummary]:
        """The first page: what most callers (the CLI, Slack) want."""
        filters = ListFilter(
            status=status, severity=severity, commander=commander, text=text, open=open
        )
        return (await self.page(filters, page_size=limit, sees=sees)).incidents

    async def running_states(self, limit: int, at_once: int = 10) -> tuple[IncidentState, ...]:
        """The states of the newest ``limit`` incidents whose channel is not archived, private
        ones too (the caller shows each only to its members), ``at_once`` asked side by side;
        one that cannot answer is left out rather than failing the others."""
        gate = asyncio.Semaphore(at_once)

        async def state(ref: str) -> IncidentState | None:
            async with gate:
                try:
                    return await self.get(ref)
                except (RPCError, NoWorkerAnswered, IncidentNotFound, CommandRefused):
                    return None

        # Running on this desk's queue: a finished workflow is archived, and another queue's
        # incidents are another deployment's (whose worker may not answer at all).
        mine = ListFilter(running_on=self.task_queue)
        listed = (await self.page(mine, page_size=limit, sees=lambda _: True)).incidents
        found = await asyncio.gather(*(state(s.id) for s in listed if s.archived_at is None))
        return tuple(s for s in found if s is not None)

    async def in_channel(self, channel_id: str, channel_name: str = "") -> str | None:
        """The id of the newest incident whose Slack channel this is: by the channel's id,
        which a rename keeps and events carry, or by its name for an incident whose build
        did not record the id."""
        clauses = [where(INCIDENT_CHANNEL_ID, "=", channel_id)] if channel_id else []
        if channel_name:
            clauses.append(where(INCIDENT_CHANNEL, "=", channel_name))
        if not clauses:
            return None
        query = incidents_where("(" + " OR ".join(clauses) + ")")
        async for execution in self.client.list_workflows(query, limit=1):
            return execution.id
        return None

    @staticmethod
    def _rpc_error(ref: str, error: RPCError) -> Exception:
        if error.status == RPCStatusCode.NOT_FOUND:
            if "completed" in error.message or "closed" in error.message:
                return CommandRefused(f"{ref} is closed (its channel is archived)")
            return IncidentNotFound(f"no incident {ref}")
        return error


def _refusal(error: WorkflowUpdateFailedError) -> CommandRefused:
    """The workflow's refusal as it raised it: a permission's (403) or the incident's (409)."""
    cause = error.cause
    if not isinstance(cause, ApplicationError):
        return CommandRefused(str(cause or error))
    if cause.type == "PermissionRefused":
        return PermissionRefused(cause.message)
    return CommandRefused(cause.message)
