"""The workspace every emulator starts from (and returns to on reset)."""

from dataclasses import dataclass, field
from typing import Any

BOT_TOKEN = "xoxb-local-emulator"

TEAM_ID = "T0LOCAL1"
TEAM_NAME = "Local Emulator"
TEAM_DOMAIN = "local-emulator"
BOT_USER_ID = "U0BOT0001"
BOT_ID = "B0BOT0001"
APP_ID = "A0LOCAL01"
OWNER_ID = "U024BE7LH"


@dataclass(frozen=True)
class User:
    id: str
    name: str
    real_name: str
    email: str
    tz: str
    tz_label: str
    tz_offset: int
    is_bot: bool = False
    is_admin: bool = False

    def to_json(self) -> dict[str, Any]:
        profile: dict[str, Any] = {
            "real_name": self.real_name,
            "real_name_normalized": self.real_name,
            "display_name": self.name,
            "display_name_normalized": self.name,
            "team": TEAM_ID,
        }
        if self.is_bot:
            profile["bot_id"] = BOT_ID
            profile["api_app_id"] = APP_ID
        else:
            profile["email"] = self.email
        return {
            "id": self.id,
            "team_id": TEAM_ID,
            "name": self.name,
            "deleted": False,
            "real_name": self.real_name,
            "tz": self.tz,
            "tz_label": self.tz_label,
            "tz_offset": self.tz_offset,
            "profile": profile,
            "is_admin": self.is_admin,
            "is_owner": self.id == OWNER_ID,
            "is_primary_owner": self.id == OWNER_ID,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": 1700000000,
        }


@dataclass(frozen=True)
class UserGroup:
    id: str
    handle: str
    name: str
    users: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self, include_users: bool) -> dict[str, Any]:
        group: dict[str, Any] = {
            "id": self.id,
            "team_id": TEAM_ID,
            "is_usergroup": True,
            "name": self.name,
            "handle": self.handle,
            "description": "",
            "user_count": len(self.users),
        }
        if include_users:
            group["users"] = list(self.users)
        return group


_NEW_YORK = ("America/New_York", "Eastern Standard Time", -18000)
_LONDON = ("Europe/London", "Greenwich Mean Time", 0)
_BERLIN = ("Europe/Berlin", "Central European Time", 3600)
_LOS_ANGELES = ("America/Los_Angeles", "Pacific Standard Time", -28800)
_SINGAPORE = ("Asia/Singapore", "Singapore Standard Time", 28800)

USERS: tuple[User, ...] = (
    User(BOT_USER_ID, "incident-bot", "Incident Bot", "", *_LOS_ANGELES, is_bot=True),
    User(OWNER_ID, "olivia", "Olivia Owner", "olivia@example.com", *_NEW_YORK, is_admin=True),
    User("U0ALICE01", "alice", "Alice Anders", "alice@example.com", *_NEW_YORK),
    User("U0BOB0002", "bob", "Bob Baker", "bob@example.com", *_LONDON),
    User("U0CAROL03", "carol", "Carol Chen", "carol@example.com", *_SINGAPORE),
    User("U0DAVE004", "dave", "Dave Diaz", "dave@example.com", *_LOS_ANGELES),
    User("U0ERIN005", "erin", "Erin Evans", "erin@example.com", *_BERLIN),
)

USER_GROUPS: tuple[UserGroup, ...] = (
    UserGroup("S0ONCALL1", "oncall", "On-call", ("U0ALICE01", "U0BOB0002")),
    UserGroup("S0LEADS01", "incident-leads", "Incident leads", (OWNER_ID, "U0CAROL03")),
)

HUMAN_IDS: tuple[str, ...] = tuple(u.id for u in USERS if not u.is_bot)
