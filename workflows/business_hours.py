"""When a retrospective meeting can be held: the first slot inside business hours.

"Free" means inside the policy's business hours on a working day; nobody's calendar is read
(a calendar integration is out of scope), so the invitation proposes the slot and people move
it if they must.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from workflows.policy import BusinessHours

SEARCH_DAYS = 21
ZERO = timedelta(0)  # a policy with one working day a week still finds one


def _at(day: date, clock: str, zone: ZoneInfo) -> datetime:
    hours, minutes = (int(part) for part in clock.split(":"))
    if hours == 24:
        return datetime.combine(day + timedelta(days=1), time(0, minutes), zone)
    return datetime.combine(day, time(hours, minutes), zone)


def _windows(
    local: datetime, hours: BusinessHours, zone: ZoneInfo
) -> list[tuple[datetime, datetime]]:
    """Business hours from the day of ``local`` on; a day ending at 24:00 joins the next."""
    windows: list[tuple[datetime, datetime]] = []
    for offset in range(SEARCH_DAYS):
        day = local.date() + timedelta(days=offset)
        if day.weekday() not in hours.days:
            continue
        opens, closes = _at(day, hours.start, zone), _at(day, hours.end, zone)
        if windows and windows[-1][1] == opens:
            windows[-1] = (windows[-1][0], closes)
        else:
            windows.append((opens, closes))
    return windows


def first_free_slot(after: datetime, hours: BusinessHours, length: timedelta) -> datetime:
    """The earliest start at or after ``after`` where a meeting of ``length`` fits in business
    hours; if the meeting is longer than a business day, the start of the next business day."""
    zone = ZoneInfo(hours.timezone)
    # Whole seconds: calendars (iCalendar) carry no fractions, and the archive counts from here.
    whole = after.replace(microsecond=0) + (timedelta(seconds=1) if after.microsecond else ZERO)
    local = whole.astimezone(zone)
    fallback: datetime | None = None
    for opens, closes in _windows(local, hours, zone):
        start = max(opens, local)
        if start + length <= closes:
            return start.astimezone(UTC)
        if fallback is None and opens >= local:
            fallback = opens
    return (fallback or local).astimezone(UTC)
