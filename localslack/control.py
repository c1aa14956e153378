"""What tests see and steer: the record of calls, and faults to inject."""

import random
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .errors import SlackError
from .seed import TEAM_ID, TEAM_NAME
from .workspace import Workspace


@dataclass(frozen=True)
class Call:
    method: str
    args: dict[str, Any]
    ok: bool
    error: str | None
    at: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Fault:
    """The next `times` calls of `method` fail this way.

    status 429 (or error "ratelimited") answers like Slack's rate limiter, with a
    Retry-After header; a 5xx status answers with an HTTP error page, as a failing Slack
    edge does; otherwise the call gets `{"ok": false, "error": error}` with HTTP 200.

    `commit` first does the call for real and then fails it anyway: Slack did the work and
    the answer was lost. `drop` closes the connection instead of answering. `delay` holds
    the answer that many seconds first, as a Slack that hangs does; alone, the call then
    answers as usual.
    """

    method: str
    error: str | None = None
    status: int | None = None
    retry_after: int = 1
    times: int = 1
    commit: bool = False
    drop: bool = False
    delay: float = 0.0

    def __post_init__(self) -> None:
        if self.error is None and self.status is None and not self.drop and not self.delay:
            raise ValueError("a fault needs an error, a status, a drop, a delay or some of them")
        if self.status is not None and not 400 <= self.status <= 599:
            raise ValueError(f"fault status must be an HTTP error status, not {self.status}")
        if self.times < 1 or self.retry_after < 0 or not 0 <= self.delay <= 300:
            raise ValueError("times must be >= 1, retry_after >= 0, delay 0 to 300 s")

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> "Fault":
        known = {f.name for f in fields(cls)}
        unknown = set(body) - known
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        return cls(**body)

    @property
    def only_delays(self) -> bool:
        return self.error is None and self.status is None and not self.drop

    @property
    def is_server_error(self) -> bool:
        return self.status is not None and self.status >= 500

    @property
    def code(self) -> str:
        """The error recorded for a call this fault answered."""
        if self.drop:
            return "connection_dropped"
        if self.error:
            return self.error
        return "ratelimited" if self.status == 429 else f"http_{self.status}"

    def as_error(self) -> SlackError:
        """Slack's answer for any fault but a 5xx."""
        if self.status == 429 or (self.status is None and self.error == "ratelimited"):
            return SlackError(self.code, status=429, retry_after=self.retry_after)
        return SlackError(self.code, status=self.status or 200)


@dataclass
class FaultBook:
    """Armed faults, one queue entry per failing call, consumed in order per method."""

    _armed: dict[str, deque[Fault]] = field(default_factory=dict)

    def arm(self, fault: Fault) -> None:
        self._armed.setdefault(fault.method, deque()).extend([fault] * fault.times)

    def take(self, method: str) -> Fault | None:
        queue = self._armed.get(method)
        return queue.popleft() if queue else None

    def clear(self) -> None:
        self._armed.clear()


# The last part of the name of a method that only reads; every other method writes.
READ_VERBS = frozenset({"test", "list", "info", "history", "replies", "members", "lookupByEmail"})


def is_write(method: str) -> bool:
    return method.rsplit(".", 1)[-1] not in READ_VERBS


@dataclass
class Chaos:
    """A share of all successful writes commits and then fails: half answer 503, half drop
    the connection. Seeded, so a failing test run can be replayed."""

    rate: float
    seed: int = 0
    hits: int = field(default=0, init=False)  # writes it failed after they committed
    _random: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0 <= self.rate <= 1:
            raise ValueError(f"chaos rate must be between 0 and 1, not {self.rate}")
        self._random = random.Random(self.seed)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> "Chaos":
        unknown = set(body) - {"rate", "seed"}
        if unknown:
            raise ValueError(f"unknown chaos fields: {sorted(unknown)}")
        return cls(rate=float(body["rate"]), seed=int(body.get("seed", 0)))

    def fault(self, method: str) -> Fault | None:
        """The fault that hits this write after it committed, if any."""
        if not is_write(method) or self._random.random() >= self.rate:
            return None
        self.hits += 1
        if self._random.random() < 0.5:
            return Fault(method, status=503, commit=True)
        return Fault(method, drop=True, commit=True)


def workspace_state(ws: Workspace) -> dict[str, Any]:
    """Everything the workspace holds, for out-of-process tests and debugging."""
    return {
        "team": {"id": TEAM_ID, "name": TEAM_NAME},
        "channels": [
            {
                "id": c.id,
                "name": c.name,
                "is_private": c.is_private,
                "is_im": c.is_im,
                "is_mpim": c.is_mpim,
                "archived": c.is_archived,
                "created": c.created,
                "creator": c.creator,
                "topic": c.topic,
                "purpose": c.purpose,
                "members": list(c.members),
                "pins": list(c.pins),
                "bookmarks": c.bookmarks,
                "messages": c.messages,
            }
            for c in ws.channels.values()
        ],
        "users": [u.to_json() for u in ws.users.values()],
        "usergroups": [g.to_json(include_users=True) for g in ws.user_groups.values()],
        "canvases": list(ws.canvases.values()),
    }
