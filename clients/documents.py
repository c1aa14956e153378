"""Documents of an incident in Slack: the report and the retrospective draft as files, the
people's emails, and the meeting invitation (iCalendar, made with the ``icalendar`` library).

Files go through Slack's external upload flow (``files.getUploadURLExternal``, the bytes to
the upload URL, ``files.completeUploadExternal`` with the channel). File names carry the
incident and a key, so a retried upload finds the share it already made.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from icalendar import Calendar, Event, vCalAddress, vText
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from clients.slack_client import permanent_errors, slack_error
from workflows.oncall.schedules import Shift
from workflows.requests import Emails, Invitation, People, Upload, Uploaded

log = structlog.get_logger()
HISTORY_SCAN = 200
PRODUCT_ID = "-//incident-automation//retrospective//EN"
FEED_ID = "-//incident-automation//on-call//EN"


class SlackDocuments:
    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def upload(self, request: Upload, check_first: bool) -> Uploaded:
        """Share the files, unless ``check_first`` finds a share an earlier try made."""
        names = [f.filename for f in request.files]
        if check_first:
            found = await self._shared_before(request.channel_id, names)
            if found is not None:
                log.info("files_found_again", channel_id=request.channel_id, files=names)
                return Uploaded(permalinks=found)
        async with permanent_errors("files.completeUploadExternal"):
            response = await self.client.files_upload_v2(
                channel=request.channel_id,
                file_uploads=[
                    {"content": f.content.encode(), "filename": f.filename, "title": f.title}
                    for f in request.files
                ],
                initial_comment=request.comment or None,
            )
        files: list[dict[str, Any]] = list(response.get("files") or [])
        log.info("files_shared", channel_id=request.channel_id, files=names)
        return Uploaded(permalinks=[str(f.get("permalink", "")) for f in files])

    async def _shared_before(self, channel: str, names: list[str]) -> list[str] | None:
        async with permanent_errors("conversations.history"):
            response = await self.client.conversations_history(channel=channel, limit=HISTORY_SCAN)
        for message in response["messages"]:
            files = {f.get("name"): f for f in message.get("files", [])}
            if all(name in files for name in names):
                return [str(files[name].get("permalink", "")) for name in names]
        return None

    async def emails(self, request: People) -> Emails:
        """Slack profile emails of these users; someone without one (or unknown) is left out."""
        found = Emails()
        for user in dict.fromkeys(request.users):
            try:
                async with permanent_errors("users.info", "user_not_found", "users_not_found"):
                    response = await self.client.users_info(user=user)
            except SlackApiError as error:
                if slack_error(error) in ("user_not_found", "users_not_found"):
                    continue
                raise
            email = response["user"].get("profile", {}).get("email")
            if email:
                found.by_user[user] = str(email)
        return found


def invitation_ics(request: Invitation, organizer: str) -> str:
    """An iCalendar REQUEST; the UID is stable, so a resent invitation updates the same event."""
    calendar = Calendar()
    calendar.add("prodid", PRODUCT_ID)
    calendar.add("version", "2.0")
    calendar.add("method", "REQUEST")
    event = Event()
    event.add("uid", request.uid)
    event.add("dtstamp", datetime.now(UTC))
    event.add("dtstart", request.start.astimezone(UTC))
    event.add("dtend", request.start.astimezone(UTC) + timedelta(seconds=request.length_seconds))
    event.add("summary", request.summary)
    event.add("description", request.description)
    event["organizer"] = vCalAddress(f"mailto:{organizer}")
    for email in request.attendees:
        attendee = vCalAddress(f"mailto:{email}")
        attendee.params["role"] = vText("REQ-PARTICIPANT")
        attendee.params["rsvp"] = vText("TRUE")
        event.add("attendee", attendee, encode=False)
    calendar.add_component(event)
    return str(calendar.to_ical().decode())


def shifts_calendar(name: str, shifts: list[tuple[str, Shift]]) -> str:
    """On-call shifts as an iCalendar feed, each with its summary. Times are in UTC, so every
    reader places them right across daylight saving; the UID is stable, so a calendar app
    reading the feed again updates a shift instead of adding it twice."""
    calendar = Calendar()
    calendar.add("prodid", FEED_ID)
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", name)
    stamp, feed = datetime.now(UTC), hashlib.sha256(name.encode()).hexdigest()[:12]
    for summary, shift in shifts:
        event = Event()
        start = shift.start.astimezone(UTC)
        event.add("uid", f"{shift.user}-{start:%Y%m%dT%H%M%SZ}-{feed}@oncall")
        event.add("dtstamp", stamp)
        event.add("dtstart", start)
        event.add("dtend", shift.end.astimezone(UTC))
        event.add("summary", summary + (" (override)" if shift.override else ""))
        calendar.add_component(event)
    return str(calendar.to_ical().decode())
