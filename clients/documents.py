"""Documents of an incident in Slack: the report and the retrospective draft as canvases or
files, the people's emails, and the meeting invitation (iCalendar, made with ``icalendar``).

Files go through Slack's external upload flow (``files.getUploadURLExternal``, the bytes to
the upload URL, ``files.completeUploadExternal`` with the channel). File names carry the
incident and a key, so a retried upload finds the share it already made.

Canvases: the retrospective draft is the channel's canvas (``conversations.canvases.create``),
the situation report a canvas of its own (``canvases.create``) that the channel may read
(``canvases.access.set``). A workspace may allow neither (a free plan, canvases turned off, a
token or scope it will not take): ``CANVAS_REFUSED`` says so, and the file goes instead. A
create whose answer was lost is found again among the bot's files (``files.list``): its
title, made since the upload was first asked for.
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
# Slack's answers that mean "no such canvas in this workspace": the Markdown file goes instead.
CANVAS_REFUSED = frozenset(
    {
        "canvas_disabled_user_team",
        "team_tier_cannot_create_channel_canvases",
        "free_team_canvas_tab_already_exists",
        "free_teams_cannot_create_standalone_canvases",
        "free_teams_cannot_create_non_tabbed_canvases",
        "channel_canvas_already_exists",  # someone else's: the channel holds only one
        "canvas_creation_failed",
        "channel_canvas_creation_failed",
        "canvas_tab_creation_failed",
        "not_allowed_token_type",
        "missing_scope",
        "restricted_action",
        "access_denied",
        "unknown_method",  # a Slack (or an emulator) without canvases
    }
)
CANVAS_TYPES = ("quip", "canvas")  # a canvas's ``filetype`` in Slack's file objects
FILES_PAGES = 5  # pages of the bot's files a retry looks through for its canvas
CLOCK_SKEW = timedelta(minutes=5)  # Slack's clock may be behind the worker's


class SlackDocuments:
    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self._bot: dict[str, str] = {}  # auth.test: the bot's user id, the workspace's address

    async def upload(
        self, request: Upload, check_first: bool, since: datetime | None = None
    ) -> Uploaded:
        """The first file as a canvas where it asks and Slack allows, linked in the channel (by
        the other files' comment, or a message of its own); else every file as a file.
        ``since`` (when the upload was first asked for) bounds where a retry looks for it."""
        asked = since or datetime.now(UTC)
        made, refused = (
            await self._canvas(request, check_first, asked)
            if request.files[0].canvas
            else (None, "")
        )
        if made is None:
            uploaded = await self._files(request, check_first)
            return uploaded.model_copy(update={"refused": refused})
        said = f"{request.comment}: {made}" if request.comment else made
        rest = request.model_copy(update={"files": request.files[1:], "comment": said})
        if rest.files:
            permalinks = (await self._files(rest, check_first)).permalinks
        else:
            await self._say(request.channel_id, said, made, check_first)
            permalinks = []
        return Uploaded(permalinks=[made, *permalinks], canvas=True)

    async def _canvas(
        self, request: Upload, check_first: bool, since: datetime
    ) -> tuple[str | None, str]:
        """The canvas's link, once however often retried; else Slack's refusal."""
        document = request.files[0]
        of_channel = document.canvas == "channel"
        found = await self._canvas_made(request, since) if check_first else None
        if found is None:
            content = {"type": "markdown", "markdown": document.content}
            method = "conversations.canvases.create" if of_channel else "canvases.create"
            try:
                async with permanent_errors(method, *CANVAS_REFUSED):
                    if of_channel:
                        response = await self.client.conversations_canvases_create(
                            channel_id=request.channel_id,
                            document_content=content,
                            title=document.title,
                        )
                    else:
                        response = await self.client.canvases_create(
                            title=document.title, document_content=content
                        )
                found = str(response["canvas_id"])
            except SlackApiError as error:
                code = slack_error(error)
                if code not in CANVAS_REFUSED:
                    raise
                # A retry after a create that did happen meets the canvas it made.
                again = code == "channel_canvas_already_exists"
                if not again or (found := await self._canvas_made(request, since)) is None:
                    log.info("canvas_refused", channel_id=request.channel_id, error=code)
                    return None, code
        if not of_channel:  # a channel reads its own canvas already
            async with permanent_errors("canvases.access.set"):
                await self.client.canvases_access_set(
                    canvas_id=found, access_level="read", channel_ids=[request.channel_id]
                )
        log.info("canvas_made", channel_id=request.channel_id, canvas_id=found)
        bot = await self._auth()
        return f"{bot['url']}docs/{bot['team_id']}/{found}", ""

    async def _canvas_made(self, request: Upload, since: datetime) -> str | None:
        """The canvas of this title the bot made since the upload was asked for, if any."""
        bot, title = await self._auth(), request.files[0].title
        after = str(int((since - CLOCK_SKEW).timestamp()))
        for page in range(1, FILES_PAGES + 1):
            async with permanent_errors("files.list"):
                response = await self.client.files_list(
                    user=bot["user_id"], ts_from=after, page=page
                )
            for file in response.get("files") or []:  # a canvas: not the file of that title
                if file.get("title") == title and file.get("filetype") in CANVAS_TYPES:
                    return str(file["id"])
            if page >= int((response.get("paging") or {}).get("pages", 1)):
                return None
        return None

    async def _say(self, channel: str, text: str, link: str, check_first: bool) -> None:
        """The message linking the canvas, unless an earlier try already posted one."""
        if check_first:
            async with permanent_errors("conversations.history"):
                response = await self.client.conversations_history(
                    channel=channel, limit=HISTORY_SCAN
                )
            if any(link in m.get("text", "") for m in response["messages"]):
                return
        async with permanent_errors("chat.postMessage"):
            await self.client.chat_postMessage(channel=channel, text=text, unfurl_links=True)

    async def _auth(self) -> dict[str, str]:
        if not self._bot:
            async with permanent_errors("auth.test"):
                response = await self.client.auth_test()
            self._bot = {k: str(response[k]) for k in ("user_id", "url", "team_id")}
        return self._bot

    async def _files(self, request: Upload, check_first: bool) -> Uploaded:
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
