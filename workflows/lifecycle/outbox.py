"""Which side effects may run side by side.

Effects queued by commands and timers are grouped into lanes: inside a lane they keep their
order (an invitation lands before the message that mentions the invited; the archive comes
after the last post), while lanes run concurrently, so a status change reaches the incident
channel, the broadcast channel and the topic in one round trip instead of three. Each effect
names its lanes (``SideEffect.routes``), so nothing here asks an effect its type.
"""

from __future__ import annotations

from workflows.effects import Audience, Effect, Lane

Step = tuple[Effect, Audience | None]


def lanes(effects: list[Effect]) -> dict[Lane, list[Step]]:
    """Split a batch of effects into ordered lanes; of a ``newest_only`` kind, only the last."""
    newest = {type(effect): index for index, effect in enumerate(effects) if effect.newest_only}
    grouped: dict[Lane, list[Step]] = {}
    for index, effect in enumerate(effects):
        if effect.newest_only and newest[type(effect)] != index:
            continue
        for lane, audience in effect.routes():
            grouped.setdefault(lane, []).append((effect, audience))
    return grouped
