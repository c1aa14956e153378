"""The emulated workspace: who and what exists, and Slack's rules for channels and members.

What is written into a channel (messages, pins, bookmarks) is ``posts.Posts``'s.
"""

import random
import re
import string
import time
from typing import Any

from .errors import SlackError
from .posts import Channel, Posts, Setter, format_stamp, writable
from .seed import BOT_USER_ID, HUMAN_IDS, OWNER_ID, TEAM_ID, USER_GROUPS, USERS, User, UserGroup

NAME_MAX = 80
TOPIC_MAX = 250
MAX_DIRECT_USERS = 8
MAX_EVENTS = 1000  # undelivered events kept (no app listening: the oldest go)

_NAME = re.compile(r"^[a-z0-9_-]+$")
_ID_CHARS = string.ascii_uppercase + string.digits
_rng = random.Random()


def name_error(name: str) -> str | None:
    """Slack's error code for a channel name it would refuse, or None."""
    if not name:
        return "invalid_name_required"
    if len(name) > NAME_MAX:
        return "invalid_name_maxlength"
    if not _NAME.match(name):
        return "invalid_name_specials"
    if not name.strip("-_"):
        return "invalid_name_punctuation"
    return None


class Workspace:
    def __init__(self, broadcast_channel: str, per_channel_rate_limit: bool) -> None:
        self.users: dict[str, User] = {u.id: u for u in USERS}
        self.users_by_email: dict[str, User] = {u.email: u for u in USERS if u.email}
        self.user_groups: dict[str, UserGroup] = {g.id: g for g in USER_GROUPS}
        self.channels: dict[str, Channel] = {}
        self._names: dict[str, str] = {}
        self._direct: dict[frozenset[str], str] = {}
        self._ids: set[str] = set()
        self._last_stamp = 0
        # What is written into channels; it stamps and names things the workspace's way.
        # Events an app would be told of, oldest first, until the console delivers them.
        self.events: list[dict[str, Any]] = []
        self.posts = Posts(self.next_ts, self.new_id, per_channel_rate_limit, self._emit)
        self.canvases: dict[str, dict[str, Any]] = {}  # by canvas id (api/files.py)
        self.canvas_plan = "paid"  # or "free" (one canvas tab a channel), "off" (disabled)
        self.views: dict[str, dict[str, Any]] = {}  # modals opened, by view id (views.*)
        self.homes: dict[str, dict[str, Any]] = {}  # each person's App Home (views.publish)
        self.triggers: dict[str, str] = {}  # trigger id -> the user whose action made it
        self.files: dict[str, dict[str, Any]] = {}  # uploads, by file id (api/files.py)
        self.upload_base = ""  # where upload URLs point; the server sets it once it listens
        self._seed_channels(broadcast_channel)

    def _seed_channels(self, broadcast: str) -> None:
        error = name_error(broadcast)
        if error:
            raise ValueError(f"broadcast channel name {broadcast!r}: {error}")
        general = self._new_channel("general", OWNER_ID, is_private=False)
        general.is_general = True
        general.members = list(HUMAN_IDS)
        seeded = Setter(OWNER_ID, general.created)
        general.describe("purpose", "Company-wide announcements", seeded)
        if broadcast != "general":
            channel = self._new_channel(broadcast, OWNER_ID, is_private=False)
            channel.members = list(HUMAN_IDS)
            channel.describe("topic", "Incident announcements", seeded)
        else:
            channel = general
        # An admin invites the bot to the broadcast channel when installing the app.
        channel.members.append(BOT_USER_ID)

    # --- identifiers and time -------------------------------------------------------

    def new_id(self, prefix: str) -> str:
        while True:
            candidate = prefix + "".join(_rng.choices(_ID_CHARS, k=10))
            if candidate not in self._ids:
                self._ids.add(candidate)
                return candidate

    def next_ts(self) -> str:
        """Wall-clock based, but strictly increasing even within one microsecond."""
        self._last_stamp = max(time.time_ns() // 1000, self._last_stamp + 1)
        return format_stamp(self._last_stamp)

    def _emit(self, event: dict[str, Any]) -> None:
        self.events.append({**event, "event_ts": self.next_ts()})
        del self.events[:-MAX_EVENTS]

    def joined(self, channel: Channel, user: str, inviter: str | None = None) -> None:
        """Slack's notice in the channel and its ``member_joined_channel`` event."""
        message = self.posts.system(
            channel, user, "channel_join", f"<@{user}> has joined the channel"
        )
        event = {"type": "member_joined_channel", "user": user, "channel": channel.id}
        if inviter:
            message["inviter"] = event["inviter"] = inviter
        self._emit({**event, "channel_type": "G" if channel.is_private else "C", "team": TEAM_ID})

    def home_opened(self, user: str) -> None:
        """``app_home_opened``: the person opened the app's Home tab (with what it showed)."""
        channel = self.open_direct(BOT_USER_ID, [user])  # Slack names the app's DM with them
        event = {"type": "app_home_opened", "user": user, "channel": channel.id, "tab": "home"}
        self._emit({**event, **({"view": self.homes[user]} if user in self.homes else {})})

    # --- lookups --------------------------------------------------------------------

    def user(self, user_id: str) -> User:
        user = self.users.get(user_id)
        if user is None:
            raise SlackError("user_not_found")
        return user

    def channel(self, ref: str, viewer: str, *, by_name: bool = False) -> Channel:
        """The channel `viewer` may see by id (or by name, where Slack allows it)."""
        found = self.channels.get(ref)
        if found is None and by_name:
            channel_id = self._names.get(ref.removeprefix("#"))
            found = self.channels.get(channel_id) if channel_id else None
        if found is None or (found.members_only and viewer not in found.members):
            raise SlackError("channel_not_found")
        return found

    def channel_by_name(self, name: str) -> Channel | None:
        channel_id = self._names.get(name.removeprefix("#"))
        return self.channels.get(channel_id) if channel_id else None

    # --- channels -------------------------------------------------------------------

    def _new_channel(self, name: str, creator: str, *, is_private: bool) -> Channel:
        channel = Channel(
            id=self.new_id("C"),
            name=name,
            creator=creator,
            created=int(time.time()),
            is_private=is_private,
            members=[creator],
        )
        self.channels[channel.id] = channel
        self._names[name] = channel.id
        return channel

    def _check_name(self, name: str) -> None:
        error = name_error(name)
        if error:
            raise SlackError(error)
        if name in self._names:
            raise SlackError("name_taken")

    def create_channel(self, name: str, actor: str, *, is_private: bool) -> Channel:
        self._check_name(name)
        channel = self._new_channel(name, actor, is_private=is_private)
        self.joined(channel, actor)
        return channel

    def _named_channel(self, channel: Channel) -> None:
        if not channel.is_channel:
            raise SlackError("method_not_supported_for_channel_type")

    def rename(self, channel: Channel, name: str, actor: str) -> None:
        self._named_channel(channel)
        writable(channel, actor)
        if name == channel.name:
            return
        self._check_name(name)
        del self._names[channel.name]
        channel.previous_names.insert(0, channel.name)
        channel.name = name
        self._names[name] = channel.id
        self.posts.system(channel, actor, "channel_name", f"renamed the channel to #{name}")

    def set_topic(self, channel: Channel, kind: str, value: str, actor: str) -> None:
        """Sets the topic or the purpose (`kind`), which follow the same rules."""
        writable(channel, actor)
        if len(value) > TOPIC_MAX:
            raise SlackError("too_long")
        channel.describe(kind, value, Setter(actor, int(time.time())))
        label = "topic" if kind == "topic" else "description"
        message = self.posts.system(
            channel, actor, f"channel_{kind}", f"set the channel {label}: {value}"
        )
        message[kind] = value

    def invite(self, channel: Channel, user_ids: list[str], actor: str, *, force: bool) -> None:
        """Slack's all-or-nothing invite; `force` skips the users that cannot be invited."""
        self._named_channel(channel)
        writable(channel, actor)
        if not user_ids:
            raise SlackError("no_user")
        errors: list[dict[str, Any]] = []
        invitable: list[str] = []
        for user_id in dict.fromkeys(user_ids):
            error = self._invite_error(channel, user_id, actor)
            if error:
                errors.append({"user": user_id, "ok": False, "error": error})
            else:
                invitable.append(user_id)
        if errors and not (force and invitable):
            raise SlackError(errors[0]["error"], extra={"errors": errors})
        for user_id in invitable:
            channel.members.append(user_id)
            self.joined(channel, user_id, inviter=actor)

    def _invite_error(self, channel: Channel, user_id: str, actor: str) -> str | None:
        if user_id == actor:
            return "cant_invite_self"
        if user_id not in self.users:
            return "user_not_found"
        if user_id in channel.members:
            return "already_in_channel"
        return None

    def join(self, channel: Channel, actor: str) -> bool:
        """Joins a public channel; True if `actor` was already a member."""
        if not channel.is_channel or channel.is_private:
            raise SlackError("method_not_supported_for_channel_type")
        if channel.is_archived:
            raise SlackError("is_archived")
        if actor in channel.members:
            return True
        channel.members.append(actor)
        self.joined(channel, actor)
        return False

    def archive(self, channel: Channel, actor: str) -> None:
        self._named_channel(channel)
        if channel.is_general:
            raise SlackError("cant_archive_general")
        writable(channel, actor, archived="already_archived")
        self.posts.system(channel, actor, "channel_archive", "archived the channel")
        channel.is_archived = True

    def unarchive(self, channel: Channel, actor: str) -> None:
        self._named_channel(channel)
        if not channel.is_archived:
            raise SlackError("not_archived")
        channel.is_archived = False
        self.posts.system(channel, actor, "channel_unarchive", "un-archived the channel")

    def open_direct(self, actor: str, user_ids: list[str]) -> Channel:
        """The DM (one other user) or group DM (several) between the actor and users."""
        if not user_ids:
            raise SlackError("users_list_not_supplied")
        if len(user_ids) > MAX_DIRECT_USERS:
            raise SlackError("too_many_users")
        for user_id in user_ids:
            self.user(user_id)
        members = list(dict.fromkeys([actor, *user_ids]))
        key = frozenset(members)
        existing = self._direct.get(key)
        if existing is not None:
            return self.channels[existing]
        is_im = len(members) <= 2
        names = "--".join(self.users[m].name for m in members)
        channel = Channel(
            id=self.new_id("D" if is_im else "C"),
            name=members[-1] if is_im else f"mpdm-{names}-1",
            creator=actor,
            created=int(time.time()),
            is_im=is_im,
            is_mpim=not is_im,
            members=members,
        )
        self.channels[channel.id] = channel
        self._direct[key] = channel.id
        return channel
