"""Drills: a practice incident runs the real workflow on a compressed clock, clearly marked.

The policy a drill carries in its workflow input is the real one with every duration scaled
by the drill factor, so escalations, reminders, the retrospective and the archive all come
sooner without a single special case in the deadline code.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar

from pydantic import BaseModel, Field

M = TypeVar("M", bound=BaseModel)
MARKER = "DRILL"
CHANNEL_PREFIX = "drill-"
MESSAGE_MARKER = f":construction: {MARKER}"  # leads every message and topic of a drill


class DrillPolicy(BaseModel):
    time_factor: float = Field(default=0.1, gt=0, le=1)  # 0.1: a 15-minute cadence is 90 s
    page: bool = False  # pages go out only when a team wants to practise the pager too


def _scaled(value: Any, factor: float) -> Any:
    if isinstance(value, timedelta):
        return value * factor
    if isinstance(value, BaseModel):
        return compress(value, factor)
    if isinstance(value, list):
        return [_scaled(v, factor) for v in value]
    if isinstance(value, dict):
        return {k: _scaled(v, factor) for k, v in value.items()}
    return value


def compress(model: M, factor: float) -> M:
    """A copy of ``model`` with every duration in it, however deep, multiplied by ``factor``."""
    changed = {name: _scaled(getattr(model, name), factor) for name in type(model).model_fields}
    return model.model_copy(update=changed)


def channel_name(name: str, limit: int) -> str:
    """The drill's channel says what it is in its name, within Slack's length limit."""
    return (CHANNEL_PREFIX + name)[:limit].strip("-_")


def marked(text: str, is_drill: bool) -> str:
    """Nobody mistakes a drill for the real thing, whichever message they see first."""
    return f"{MESSAGE_MARKER} · {text}" if is_drill else text
