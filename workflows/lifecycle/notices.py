"""What every part of the incident domain shares to speak and to refuse: numbered notices,
the refusal a command gets and the one a person gets whom the policy does not permit.

Its own module, so the state machine (``lifecycle``), public incidents, the follow-through and
the deadline dispatch all post the same way without importing one another.
"""

from __future__ import annotations

from collections.abc import Collection

from temporalio.exceptions import ActivityError, ApplicationError, FailureError

from workflows.effects import Audience, Effect, Notice, Post
from workflows.incident_types import Action, Permissions
from workflows.models import IncidentState

BOTH = [Audience.CHANNEL, Audience.BROADCAST]
CHANNEL = [Audience.CHANNEL]


class CommandRefused(ApplicationError):
    """A command the incident cannot take as it stands; the message says why, for people.

    The one refusal: the rules raise it inside the workflow, and the desk raises it again
    outside (from the failed Update, or for a closed incident), so the API answers it 409,
    the Slack app ephemerally and the CLI prints the API's detail.
    """

    def __init__(self, message: str, kind: str = "CommandRefused") -> None:
        super().__init__(message, type=kind, non_retryable=True)


class PermissionRefused(CommandRefused):
    """The policy's ``[permissions]`` do not let who acts do this; the message names the rule.

    A refusal like any other to the Slack app (ephemeral) and the CLI (prints it), but its own
    type, which the desk keeps from the failed Update, so the API answers it 403, not 409.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, "PermissionRefused")

    def __str__(self) -> str:
        return self.message  # people read the rule, not the type's name before it


def require_permission(
    permissions: Permissions,
    action: Action,
    by: str | None,
    answers_to: Collection[str] = (),
    holds: Collection[str] = (),
) -> None:
    """``PermissionRefused`` naming the rule, unless ``by`` may do ``action``."""
    refusal = permissions.refusal(action, by, answers_to, holds)
    if refusal is not None:
        raise PermissionRefused(refusal)


def failure_reason(error: ActivityError) -> str:
    """What the timeline says of a side effect that failed: the first application error's
    message (the Slack error code), not the wrappers'."""
    cause: BaseException = error
    while isinstance(cause, FailureError) and not isinstance(cause, ApplicationError):
        cause = cause.cause or ApplicationError(str(cause))
    return str(cause)


def _key(state: IncidentState, notice: Notice) -> str:
    state.notices_posted += 1
    return f"{notice.value}-{state.notices_posted}"


def post_notice(
    state: IncidentState,
    notice: Notice,
    audience: list[Audience],
    actor: str | None,
    text: str,
    mentions: list[str] | None = None,
) -> Post:
    return Post(
        key=_key(state, notice),
        notice=notice,
        audience=audience,
        actor=actor,
        text=text,
        mentions=mentions or [],
    )


def channel_notice(state: IncidentState, notice: Notice, text: str) -> Post:
    """A notice in the incident channel from the incident itself (no person acted)."""
    return post_notice(state, notice, CHANNEL, None, text)


def require_open(state: IncidentState, action: str) -> None:
    if state.is_open:
        return
    raise CommandRefused(f"{state.label} is resolved; reopen it before you {action}")


def heard(state: IncidentState, effects: list[Effect]) -> list[Effect]:
    """The effects as the incident may make them heard: a private incident's posts lose the
    broadcast channel (the whole organisation reads it), and one meant only for it is dropped."""
    if not state.private:
        return effects
    kept: list[Effect] = []
    for effect in effects:
        if isinstance(effect, Post) and Audience.BROADCAST in effect.audience:
            audience = [a for a in effect.audience if a is not Audience.BROADCAST]
            if not audience:
                continue
            effect = effect.model_copy(update={"audience": audience})
        kept.append(effect)
    return kept
