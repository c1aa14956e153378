"""What an invitation that failed changes: pure, so it is unit-tested without a server."""

from __future__ import annotations

from workflows.models import SLACK_USER_ID, IncidentState

UNKNOWN_USER = ("user_not_found", "users_not_found")


def invite_failed(state: IncidentState, user: str, error: str, forget: bool) -> str:
    """What to note when someone could not be invited. With ``forget`` (as the workflow asks), a
    person Slack does not know stops being a responder: nobody can reach them, and every
    later invitation would fail the same way."""
    if forget and error in UNKNOWN_USER and user in state.responders:
        state.responders.remove(user)
    who = f"<@{user}>" if SLACK_USER_ID.match(user) else user
    return f"could not invite {who}: {error}"
