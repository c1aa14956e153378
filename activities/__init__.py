"""Temporal activities: thin wrappers over the plain clients in ``clients/``.

Each activity calls one client method; what it adds is Temporal's: the activity name recorded
in histories, heartbeats, the attempt number, and ``non_retryable`` below, which tells
Temporal not to retry what a retry cannot fix.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import structlog
from temporalio.exceptions import ApplicationError

from clients import Permanent
from clients.archive import IncidentArchive
from workflows.requests import IncidentBrief, Recurrences

log = structlog.get_logger()


@contextmanager
def non_retryable() -> Iterator[None]:
    """A client's ``Permanent`` failure as a non-retryable ``ApplicationError``: the workflow
    records it on the timeline and goes on, instead of Temporal retrying it for ever."""
    try:
        yield
    except Permanent as error:
        raise ApplicationError(error.message, type=error.kind, non_retryable=True) from error


# The opening's look into the archive (``activities.slack``), beside its Slack steps.
SIMILAR_WAIT = 0.25  # seconds the opening gives the archive to find similar incidents
# Threads of their own: a search never waits in line behind the archive's writes (the records,
# in asyncio's default threads), nor holds one of those threads up.
SEARCHING = ThreadPoolExecutor(max_workers=2, thread_name_prefix="similar-incidents")


async def recall(archive: IncidentArchive | None, brief: IncidentBrief) -> Recurrences | None:
    """Earlier incidents like this one, for its kickoff, or None after ``SIMILAR_WAIT``: the
    opening asks beside its Slack steps and never waits longer on the archive (a query still
    running goes on in its thread and is dropped)."""
    title, components, before = brief.title, brief.components, brief.declared_at
    if archive is None:
        return None
    try:
        found = asyncio.get_running_loop().run_in_executor(
            SEARCHING, archive.similar, brief.id, title, components, before
        )
        return await asyncio.wait_for(found, SIMILAR_WAIT)
    except Exception as error:  # a database down or slow: the kickoff goes without
        log.warning("similar_incidents_unknown", incident_id=brief.id, error=type(error).__name__)
        return None
