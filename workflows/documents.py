"""What the follow-up activities take and give: files for Slack, emails, the invitation.

Plain data shared by the workflow and the activities (documents, mail, the archive).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class DocumentFile(BaseModel):
    filename: str
    title: str
    content: str
    mime: str = "text/markdown"


class Upload(BaseModel):
    """Share files in a channel with Slack's external upload flow; a retry finds its share."""

    channel_id: str
    files: list[DocumentFile]
    comment: str = ""


class Uploaded(BaseModel):
    permalinks: list[str] = Field(default_factory=list)


class People(BaseModel):
    users: list[str]


class Emails(BaseModel):
    by_user: dict[str, str] = Field(default_factory=dict)  # user id -> email, when Slack has one


class Invitation(BaseModel):
    """The retrospective meeting, rendered as an iCalendar request by an activity."""

    uid: str
    summary: str
    description: str
    start: datetime
    length_seconds: float
    attendees: list[str]  # emails


class Email(BaseModel):
    key: str  # becomes the Message-ID, so a retried send is recognisably the same message
    to: list[str]
    subject: str
    body: str
    attachments: list[DocumentFile] = Field(default_factory=list)
    # Mail to subscribers: List-Unsubscribe with RFC 8058 one-click (a POST to this URL).
    unsubscribe_url: str | None = None


class Sent(BaseModel):
    sent: bool
    reason: str = ""
