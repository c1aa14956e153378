"""An incident's documents as Temporal activities, over ``clients.documents``: a retried
upload looks for the share an earlier attempt made."""

from __future__ import annotations

from temporalio import activity

from activities import non_retryable
from clients.documents import SlackDocuments, invitation_ics
from workflows.requests import DocumentFile, Emails, Invitation, People, Upload, Uploaded


class DocumentActivities:
    def __init__(self, documents: SlackDocuments, organizer: str) -> None:
        self.documents = documents
        self.organizer = organizer  # the invitation's organizer (the SMTP sender)

    @activity.defn(name="documents_upload")
    async def upload(self, request: Upload) -> Uploaded:
        with non_retryable():
            return await self.documents.upload(request, activity.info().attempt > 1)

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
