"""Plain clients of the outside world: Slack, mail, paging, status webhooks and the stores.

Both the activities (thin Temporal wrappers) and the entry points' reads use these classes;
they take their connections in ``__init__`` and know nothing of Temporal. A failure that
trying again cannot fix is a ``Permanent``; the activities turn it into a non-retryable
Temporal error, the entry points into an answer to the person who asked.
"""

from __future__ import annotations


class Permanent(Exception):
    """A failure a retry cannot fix (a refused login, an unknown channel, a bad address).

    ``kind`` names the family (``SlackError``, ``MailError``, ``PagingRefused``...), which the
    activities carry over as the Temporal error's type.
    """

    def __init__(self, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
