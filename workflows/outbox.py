"""Which side effects may run side by side.

Effects queued by commands and timers are grouped into lanes: inside a lane they keep their
order (an invitation lands before the message that mentions the invited; the archive comes
after the last post), while lanes run concurrently, so a status change reaches the incident
channel, the broadcast channel and the topic in one round trip instead of three.
"""

from __future__ import annotations

from enum import StrEnum

from workflows.effects import (
    ArchiveChannel,
    Audience,
    BookmarkLinks,
    Effect,
    Invite,
    Page,
    Post,
    PublishReport,
    PublishStatus,
    RecordIncident,
    RefreshTopic,
    ReleaseKey,
    SendRetrospective,
    UpdateKickoff,
)


class Lane(StrEnum):
    CHANNEL = "channel"  # posts in the incident channel, invitations, bookmarks, the archive
    BROADCAST = "broadcast"
    TOPIC = "topic"
    PAGING = "paging"
    REGISTRY = "registry"
    KICKOFF = "kickoff"
    DIRECT = "direct"  # reminders to one person
    DOCUMENTS = "documents"  # the report and the retrospective
    ARCHIVE = "archive"  # the incident database
    STATUS_PAGE = "status_page"  # the public status page and its subscribers


Step = tuple[Effect, Audience | None]


def lanes(effects: list[Effect]) -> dict[Lane, list[Step]]:
    """Split a batch of effects into ordered lanes; only the newest topic refresh is kept."""
    last_topic = max((i for i, e in enumerate(effects) if isinstance(e, RefreshTopic)), default=-1)
    last_kickoff = max(
        (i for i, e in enumerate(effects) if isinstance(e, UpdateKickoff)), default=-1
    )
    grouped: dict[Lane, list[Step]] = {}
    for index, effect in enumerate(effects):
        if isinstance(effect, Post):
            for audience in effect.audience:
                lane = {Audience.CHANNEL: Lane.CHANNEL, Audience.OWNER: Lane.DIRECT}.get(
                    audience, Lane.BROADCAST
                )
                grouped.setdefault(lane, []).append((effect, audience))
        elif isinstance(effect, RefreshTopic):
            if index == last_topic:  # an older refresh would only show an older state
                grouped.setdefault(Lane.TOPIC, []).append((effect, None))
        elif isinstance(effect, Invite | ArchiveChannel | BookmarkLinks):
            grouped.setdefault(Lane.CHANNEL, []).append((effect, None))
        elif isinstance(effect, Page):
            grouped.setdefault(Lane.PAGING, []).append((effect, None))
        elif isinstance(effect, ReleaseKey):
            grouped.setdefault(Lane.REGISTRY, []).append((effect, None))
        elif isinstance(effect, UpdateKickoff) and index == last_kickoff:
            grouped.setdefault(Lane.KICKOFF, []).append((effect, None))
        elif isinstance(effect, PublishReport | SendRetrospective):
            grouped.setdefault(Lane.DOCUMENTS, []).append((effect, None))
        elif isinstance(effect, RecordIncident):
            grouped.setdefault(Lane.ARCHIVE, []).append((effect, None))
        elif isinstance(effect, PublishStatus):
            grouped.setdefault(Lane.STATUS_PAGE, []).append((effect, None))
    return grouped
