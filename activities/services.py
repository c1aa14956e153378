"""The activities over the product's other services: paging, mail, the follow-up documents in
Slack, the archive, the status page and who is on call. Each is a thin Temporal wrapper over
its ``clients`` class, so the API's reads use the same code without an activity in between."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog
from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities import non_retryable
from clients.archive import IncidentArchive
from clients.documents import SlackDocuments, invitation_ics
from clients.outbound import Mailer, Pager, smtp_server
from clients.slack import Slack
from clients.slack_people import SlackPeople
from clients.statuspage import StatusPagePublisher
from clients.statuspage_store import StatusPageStore
from clients.statuspage_webhooks import status_webhooks
from config import Settings
from workflows.effects import SendPage
from workflows.lifecycle.numbering import highest_number
from workflows.models import IncidentState
from workflows.oncall.rotation import ScheduleWorkflow, schedule_workflow_id
from workflows.oncall.schedules import Override, on_call
from workflows.requests import (
    DocumentFile,
    Email,
    Emails,
    Invitation,
    OnCall,
    People,
    RoleHolders,
    Sent,
    Upload,
    Uploaded,
    WebhookCall,
    WhoHoldsRoles,
    WhoIsOnCall,
)
from workflows.resolution.metrics import IncidentMetrics
from workflows.statuspage import PublicIncident

log = structlog.get_logger()


# The status page as Temporal activities, over ``clients.statuspage``.
#
# Deliveries that failed make the attempt fail, so Temporal retries it (and the publisher sends
# only what is still missing); refused webhooks too, but for good once nothing retryable is
# left, so the refusal goes on the incident's timeline instead of being tried again and again.
class StatusPageActivities:
    def __init__(self, publisher: StatusPagePublisher) -> None:
        self.publisher = publisher

    @activity.defn(name="status_page_publish")
    async def publish(self, incident: PublicIncident) -> int:
        """The number of public updates now on the page."""
        return await self.publisher.publish(incident)

    @activity.defn(name="status_page_notify_subscribers")
    async def notify_subscribers(self, incident: PublicIncident) -> int:
        """Deliveries made by this attempt."""
        outcome = await self.publisher.notify(incident)
        if outcome.failed:
            problems = [*outcome.failed, *outcome.refused.values()]
            raise ApplicationError(f"{len(problems)} deliveries failed: {', '.join(problems[:5])}")
        if outcome.refused:
            raise ApplicationError(
                f"refused {'; '.join(list(outcome.refused.values())[:5])}",
                type="WebhookRefused",
                non_retryable=True,
            )
        return outcome.sent


def status_page_activities(
    settings: Settings, archive: IncidentArchive
) -> list[Callable[..., Any]]:
    """The status page's tables live in the archive's database."""
    publisher = StatusPagePublisher(
        StatusPageStore(archive.engine),
        Mailer(smtp_server(settings)),
        status_webhooks(settings),
        settings.public_url,
    )
    status = StatusPageActivities(publisher)
    return [status.publish, status.notify_subscribers]


# The incident archive's activities, over ``clients.archive`` and ``clients.slack``.
class MetricsQuery(BaseModel):
    since: datetime | None = None
    severity: str | None = None


class ArchiveActivities:
    def __init__(self, archive: IncidentArchive, slack: Slack) -> None:
        self.archive = archive
        self.slack = slack

    @activity.defn(name="archive_record_incident")
    async def record_incident(self, state: IncidentState) -> None:
        await self.archive.record(state)

    @activity.defn(name="archive_incident_metrics")
    async def incident_metrics(self, query: MetricsQuery) -> IncidentMetrics:
        return await asyncio.to_thread(self.archive.metrics, query.since, query.severity)

    @activity.defn(name="archive_post_digest")
    async def post_digest(self, metrics: IncidentMetrics) -> None:
        """Once per digest run: a retry finds the message by the run's id in its metadata."""
        key = activity.info().workflow_id or "digest"
        with non_retryable():
            await self.slack.posts.post_digest(metrics, key, activity.info().attempt > 1)


# An incident's documents as Temporal activities, over ``clients.documents``: a retried
# upload looks for the share (and the canvas) an earlier attempt made.
class DocumentActivities:
    def __init__(self, documents: SlackDocuments, organizer: str) -> None:
        self.documents = documents
        self.organizer = organizer  # the invitation's organizer (the SMTP sender)

    @activity.defn(name="documents_upload")
    async def upload(self, request: Upload) -> Uploaded:
        with non_retryable():
            info = activity.info()  # first scheduled: a retry's canvas was made after it
            return await self.documents.upload(request, info.attempt > 1, info.scheduled_time)

    @activity.defn(name="documents_emails")
    async def emails(self, request: People) -> Emails:
        return await self.documents.emails(request)

    @activity.defn(name="documents_invitation")
    async def invitation(self, request: Invitation) -> DocumentFile:
        return DocumentFile(
            filename=f"{request.uid.split('@')[0]}.ics",
            title=request.summary,
            content=invitation_ics(request, self.organizer),
            mime="text/calendar",
        )


# Email as a Temporal activity, over ``clients.outbound``: a refused login or refused addresses
# are not retried.
class MailActivities:
    def __init__(self, mailer: Mailer) -> None:
        self.mailer = mailer

    @activity.defn(name="mail_send")
    async def send(self, email: Email) -> Sent:
        with non_retryable():
            return await self.mailer.send(email)


# Paging, and automations' webhooks: one activity per destination, and a destination's refusal
# (a 4xx other than 429; for a webhook, also not 408) is not retried.
class PagingActivities:
    def __init__(self, pager: Pager) -> None:
        self.pager = pager

    @activity.defn(name="page_pagerduty")
    async def send_pagerduty(self, request: SendPage) -> None:
        with non_retryable():
            await self.pager.send_pagerduty(request)

    @activity.defn(name="page_webhook")
    async def send_webhook(self, request: SendPage) -> None:
        with non_retryable():
            await self.pager.send_webhook(request)

    @activity.defn(name="automation_webhook")
    async def call_webhook(self, call: WebhookCall) -> None:
        with non_retryable():
            await self.pager.call_webhook(call)


# Who is on call, for a tier that names ``oncall:<schedule>``: one query of each schedule's
# workflow (its definitions and overrides, an override made a second ago included), then the
# pure shift arithmetic. A schedule whose workflow the worker has not started yet answers from
# the incident's policy, without overrides: a tier is never held back for want of a roster.
# The roles an incident type fills are answered the same way, and people it names otherwise
# (a user group's first member, a handle, an email) through Slack's directory.
class RosterActivities:
    def __init__(self, client: Client, people: SlackPeople | None = None) -> None:
        self.client = client
        self.people = people or SlackPeople(None)

    @activity.defn(name="roster_role_holders")
    async def role_holders(self, request: WhoHoldsRoles) -> RoleHolders:
        found = RoleHolders()
        if request.on_call is not None:
            found.on_call = (await self.who_is_on_call(request.on_call)).people
        with non_retryable():
            for given in request.people:
                if user := await self.people.first_user(given):
                    found.people[given] = user
        return found

    @activity.defn(name="incident_highest_number")
    async def highest_number(self) -> int:
        """A drill an automation scheduled, due now, takes the next number as the intake does."""
        return await highest_number(self.client)

    @activity.defn(name="roster_who_is_on_call")
    async def who_is_on_call(self, request: WhoIsOnCall) -> OnCall:
        people: dict[str, str | None] = {}
        for name, schedule in request.schedules.items():
            overrides: list[Override] = []
            handle = self.client.get_workflow_handle_for(
                ScheduleWorkflow.run, schedule_workflow_id(name)
            )
            try:
                roster = await handle.query(ScheduleWorkflow.roster)
                schedule, overrides = roster.schedule, roster.overrides
            except RPCError as error:
                if error.status is not RPCStatusCode.NOT_FOUND:
                    raise
                log.warning("roster_not_running", schedule=name)
            shift = on_call(schedule, overrides, request.at)
            people[name] = shift.user if shift else None
        return OnCall(people=people)
