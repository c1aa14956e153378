"""Temporal activities: thin wrappers over the plain clients in ``clients/``.

Each activity calls one client method; what it adds is Temporal's: the activity name recorded
in histories, heartbeats, the attempt number, and ``non_retryable`` below, which tells
Temporal not to retry what a retry cannot fix.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from temporalio.exceptions import ApplicationError

from clients import Permanent


@contextmanager
def non_retryable() -> Iterator[None]:
    """A client's ``Permanent`` failure as a non-retryable ``ApplicationError``: the workflow
    records it on the timeline and goes on, instead of Temporal retrying it for ever."""
    try:
        yield
    except Permanent as error:
        raise ApplicationError(error.message, type=error.kind, non_retryable=True) from error
