"""On-call schedules and their shift arithmetic: who is on call, when, and when that changes.

Pure and deterministic (zoneinfo is data), so the schedule workflow, the API and the policy
preview all answer from the same functions. A schedule is layers of rotations; a later layer
covers an earlier one where it applies (its start, its restrictions), and overrides cover all.
Every time is compared in UTC: aware datetimes sharing a tzinfo compare by wall clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, BeforeValidator, Field, model_validator

from workflows.text import Duration

DAY = timedelta(days=1)
MAX_PEOPLE, MAX_LAYERS = 100, 10
MAX_OVERRIDES = 500
MAX_SHIFTS = 2000  # one answer's shifts: a seconds-scale rotation over a month is bounded
HORIZON = timedelta(days=60)  # how far ahead a handoff is looked for
_MAX_STEPS = 20_000  # edges walked in one answer, whatever the schedule


class Restriction(BaseModel):
    """When a layer applies, in the schedule's zone: ``days`` (Monday is 0) from ``start`` to
    ``end``; an ``end`` at or before ``start`` runs past midnight (a night shift)."""

    days: list[Annotated[int, Field(ge=0, le=6)]] = Field(default=[*range(7)], min_length=1)
    start: str = Field(default="00:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str = Field(default="24:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")

    def windows(self, day: date, zone: ZoneInfo) -> Iterator[tuple[datetime, datetime]]:
        """The window starting on ``day`` (if it is one of the days), in UTC."""
        if day.weekday() in self.days:
            (start_h, start_m), (end_h, end_m) = (
                map(int, t.split(":")) for t in (self.start, self.end)
            )
            overnight = (end_h, end_m) <= (start_h, start_m) or end_h == 24
            end = _local(day + DAY if overnight else day, time(end_h % 24, end_m), zone)
            yield _local(day, time(start_h, start_m), zone), end


# The common restrictions, by name, for the policy file.
BUSINESS_HOURS = Restriction(days=[0, 1, 2, 3, 4], start="09:00", end="17:00")
WEEKENDS = Restriction(days=[5, 6])


def _named(value: Any) -> Any:
    named = {"business_hours": BUSINESS_HOURS, "weekends": WEEKENDS}
    return named.get(value, value) if isinstance(value, str) else value


class Layer(BaseModel):
    """One rotation: ``people`` take turns, each for ``shift``, from ``start``."""

    people: list[str] = Field(min_length=1, max_length=MAX_PEOPLE)  # user ids once resolved
    # Whole days or weeks are calendar days in the zone (24h too); shorter, exact seconds.
    shift: Duration = Field(ge=timedelta(seconds=1))
    start: datetime
    restrictions: list[Annotated[Restriction, BeforeValidator(_named)]] = Field(
        default_factory=list, max_length=14
    )


class Schedule(BaseModel):
    timezone: str  # an IANA name: where days, weeks and restrictions are counted
    layers: list[Layer] = Field(min_length=1, max_length=MAX_LAYERS)
    user_group: str | None = Field(default=None, pattern=r"^[a-z0-9._-]{1,80}$")

    @model_validator(mode="before")
    @classmethod
    def _one_layer(cls, data: Any) -> Any:
        """The minimal form (people, shift, start at the top) is a schedule of one layer."""
        if isinstance(data, dict) and "people" in data:
            if "layers" in data:
                raise ValueError("a schedule has either people/shift/start or layers, not both")
            rest = {k: v for k, v in data.items() if k not in Layer.model_fields}
            layer = {k: v for k, v in data.items() if k in Layer.model_fields}
            return {**rest, "layers": [layer]}
        return data

    @model_validator(mode="after")
    def _zoned(self) -> Schedule:
        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {self.timezone!r} (use an IANA name)") from None
        for layer in self.layers:  # a start without an offset is read in the schedule's zone
            if layer.start.tzinfo is None:
                layer.start = layer.start.replace(tzinfo=zone)
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Override(BaseModel):
    """Someone on call from ``start`` to ``end`` whatever the rotation says."""

    id: str = Field(max_length=64)
    user: str = Field(max_length=64)
    start: AwareDatetime
    end: AwareDatetime
    by: str | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _ordered(self) -> Override:
        if self.end <= self.start:
            raise ValueError("an override must end after it starts")
        return self


class Shift(BaseModel):
    user: str
    start: datetime
    end: datetime
    override: bool = False


def _local(day: date, at: time, zone: ZoneInfo) -> datetime:
    """A wall-clock time in the zone, in UTC (a time skipped by daylight saving moves later)."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def _boundary(layer: Layer, zone: ZoneInfo, n: int) -> datetime:
    """When shift ``n`` of the layer starts: same wall time for calendar shifts."""
    if layer.shift % DAY == timedelta(0):  # calendar days
        wall = layer.start.astimezone(zone).replace(tzinfo=None) + n * layer.shift
        return wall.replace(tzinfo=zone).astimezone(UTC)
    return layer.start.astimezone(UTC) + n * layer.shift


def _index(layer: Layer, zone: ZoneInfo, at: datetime) -> int:
    """The shift ``at`` falls in (negative before the layer starts)."""
    n = (at - layer.start) // layer.shift
    while _boundary(layer, zone, n) > at:  # calendar shifts drift an hour around DST at most
        n -= 1
    while _boundary(layer, zone, n + 1) <= at:
        n += 1
    return n


def _windows(
    layer: Layer, zone: ZoneInfo, around: datetime, before: int = 8, after: int = 8
) -> list[tuple[datetime, datetime]]:
    """The layer's restriction windows starting from ``before`` days before ``around`` to
    ``after`` days after it: a week covers every weekday, so an edge on either side."""
    today = around.astimezone(zone).date()
    days = [today + k * DAY for k in range(-before, after + 1)]
    return sorted(w for r in layer.restrictions for day in days for w in r.windows(day, zone))


def _applies(layer: Layer, zone: ZoneInfo, at: datetime) -> bool:
    if at < layer.start:
        return False
    if not layer.restrictions:
        return True
    # A window lasts a day at most: the one holding ``at`` started today or yesterday.
    return any(start <= at < end for start, end in _windows(layer, zone, at, 1, 0))


Source = tuple[str, int] | None  # who, and why: a layer's index, or -1 for an override


def _source(schedule: Schedule, overrides: list[Override], at: datetime) -> Source:
    """Who is on call at ``at`` and why: (user, -1) for an override, else (user, layer index)."""
    for override in reversed(overrides):  # the latest override wins where they overlap
        if override.start <= at < override.end:
            return override.user, -1
    zone = schedule.zone
    for i in reversed(range(len(schedule.layers))):
        layer = schedule.layers[i]
        if _applies(layer, zone, at):
            return layer.people[_index(layer, zone, at) % len(layer.people)], i
    return None


def _edges(
    schedule: Schedule, overrides: list[Override], at: datetime, rotations: bool
) -> tuple[Source, list[datetime]]:
    """Who answers at ``at``, and every time near it where the answer may change: override
    edges, then the activation edges (start, restrictions) of the layers that could take over,
    and the answering layer's own handoffs (unless only coverage matters)."""
    source = _source(schedule, overrides, at)
    edges = [t.astimezone(UTC) for o in overrides for t in (o.start, o.end)]
    if source is not None and source[1] == -1:
        return source, edges
    zone = schedule.zone
    lowest = source[1] if source is not None else 0
    for above in schedule.layers[lowest:]:
        edges.append(above.start.astimezone(UTC))
        edges.extend(t for window in _windows(above, zone, at) for t in window)
    answering = schedule.layers[source[1]] if source is not None else None
    if answering is not None and rotations and len(set(answering.people)) > 1:
        n = _index(answering, zone, at)
        edges.extend((_boundary(answering, zone, n), _boundary(answering, zone, n + 1)))
    return source, edges


def _walk(
    schedule: Schedule, overrides: list[Override], start: datetime, end: datetime, rotations: bool
) -> Iterator[tuple[datetime, datetime, Source]]:
    """Consecutive stretches from ``start`` to ``end`` with one answer each (not merged)."""
    at = start.astimezone(UTC)
    end = end.astimezone(UTC)
    for _ in range(_MAX_STEPS):
        if at >= end:
            return
        source, edges = _edges(schedule, overrides, at, rotations)
        following = min([end, *(t for t in edges if t > at)])
        yield at, following, source
        at = following


def _began(schedule: Schedule, overrides: list[Override], at: datetime) -> datetime:
    """When the stretch holding ``at`` began: the latest edge at or before it."""
    at = at.astimezone(UTC)
    earlier = [t for t in _edges(schedule, overrides, at, True)[1] if t <= at]
    return max(earlier, default=at)


def on_call(schedule: Schedule, overrides: list[Override], at: datetime) -> Shift | None:
    """Who is on call at ``at`` (None: a gap), for the shift that holds it."""
    if _source(schedule, overrides, at.astimezone(UTC)) is None:
        return None  # a gap: no walk to whoever comes next
    found = shifts(schedule, overrides, at, at + HORIZON, limit=1)
    return found[0] if found else None


def shifts(
    schedule: Schedule,
    overrides: list[Override],
    start: datetime,
    end: datetime,
    limit: int = MAX_SHIFTS,
) -> list[Shift]:
    """The shifts overlapping ``start``..``end``, overrides applied, at most ``limit``; the
    first starts when it really began, the last is cut at ``end`` (or ``HORIZON``)."""
    found: list[Shift] = []
    begin = _began(schedule, overrides, start)
    horizon = min(end.astimezone(UTC), start.astimezone(UTC) + HORIZON)
    for at, until, source in _walk(schedule, overrides, begin, max(horizon, begin), True):
        if source is None:
            continue
        user, why = source
        last = found[-1] if found else None
        if last is not None and last.end == at and (last.user, last.override) == (user, why < 0):
            last.end = until
            continue
        if len(found) == limit:
            break
        found.append(Shift(user=user, start=at, end=until, override=why < 0))
    return found


def next_handoff(schedule: Schedule, overrides: list[Override], after: datetime) -> datetime | None:
    """When someone else (or nobody) is on call next; None if nobody changes in HORIZON."""
    now = _source(schedule, overrides, after.astimezone(UTC))
    current = now[0] if now else None
    for at, _, source in _walk(schedule, overrides, after, after + HORIZON, True):
        if (source[0] if source else None) != current:
            return at
    return None


def gaps(schedule: Schedule, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """Where nobody is on call between ``start`` and ``end`` (overrides aside)."""
    found: list[tuple[datetime, datetime]] = []
    for at, until, source in _walk(schedule, [], start, end, rotations=False):
        if source is not None:
            continue
        if found and found[-1][1] == at:
            found[-1] = (found[-1][0], until)
        else:
            found.append((at, until))
    return found


def coverage_warnings(
    schedules: dict[str, Schedule], now: datetime, ahead: timedelta = timedelta(weeks=4)
) -> list[str]:
    """A line per schedule that leaves nobody on call in the next ``ahead``, with the windows
    in its zone: the policy still loads (an override may fill them), but someone should know."""
    warnings = []  # the first ten windows each: enough to see the pattern
    for name, schedule in schedules.items():
        windows = gaps(schedule, now, now + ahead)
        local = [(a.astimezone(schedule.zone), b.astimezone(schedule.zone)) for a, b in windows]
        shown = ", ".join(f"{a:%Y-%m-%d %H:%M} to {b:%Y-%m-%d %H:%M}" for a, b in local[:10])
        more = f" and {len(windows) - 10} more" if len(windows) > 10 else ""
        if windows:
            warnings.append(f"schedule {name}: nobody on call {shown}{more} ({schedule.timezone})")
    return warnings
