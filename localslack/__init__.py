"""A Slack Web API emulator, so the real slack_sdk clients run against it locally."""

from .control import Call, Fault
from .posts import Channel
from .seed import BOT_TOKEN, BOT_USER_ID, TEAM_ID
from .server import SlackEmulator

__all__ = ["BOT_TOKEN", "BOT_USER_ID", "TEAM_ID", "Call", "Channel", "Fault", "SlackEmulator"]
