"""Text from people, made safe for Slack's mrkdwn, blocks, topics and purposes.

Slack reads ``<...>`` as a control sequence (``<!channel>``, ``<@U…>``, ``<https://x|y>``) and
``&`` as the start of an entity, so a title like ``<!channel> look`` would ping everyone.
Escaping these three characters is what Slack documents; mentions are added only afterwards,
from user ids we resolved ourselves.
"""

from __future__ import annotations

_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def escape(text: str) -> str:
    """``&``, ``<`` and ``>`` as Slack's entities; everything else is left as typed."""
    return text.translate(_ESCAPES)
