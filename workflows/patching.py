"""Which code paths a run of an incident takes: one patch marker per run for today's incidents.

In a new workflow every ``workflow.patched`` call writes a marker and upserts the
TemporalChangeVersion search attribute: three of each in a declaration's first two workflow
tasks, more as the incident lives, each an event to store, index and replay. A run asks
``patched(LEAN_OPENING)`` once, as its workflow object is made (before any handler runs);
when yes, the run was started by code that has every patch below, so each is taken as applied
without a marker of its own. Runs recorded before answer no, and ask each patch as they did.
A patch added after this one is asked as usual, marker and all.

Every patch id an incident has ever asked stays listed in docs/operations.md.
"""

from __future__ import annotations

from temporalio import workflow

# The newest patch, and what it changed besides implying the earlier ones: the opening
# activity records the incident in the archive (one workflow task and activity fewer per
# declaration), the ``opening`` Update waits without a timer of its own, and a finished
# archive record wakes the main loop only when it waits for one.
LEAN_OPENING = "lean-opening"
# Every patch that existed when LEAN_OPENING came: a lean run has them all. A patch added later
# is asked for real (a lean run from before it must keep its recorded path).
IMPLIED = frozenset(
    {
        "deadlines-before-commands",
        "kickoff-kept-current",
        "public-incidents",
        "channel-bookmarks",
        "forget-unknown-responders",
        "incident-list-memo",
        "release-key-claim",
        "after-resolution-follow-through",
        "alert-links-bookmarked",
        "one-opening-activity",
        "rest-after-opening",
    }
)


class Patches:
    """``patches(id)`` stands for ``workflow.patched(id)``; ``patches.lean`` for the newest."""

    def __init__(self) -> None:
        self.lean = workflow.patched(LEAN_OPENING)

    def __call__(self, patch_id: str) -> bool:
        if self.lean and patch_id in IMPLIED:
            return True
        return workflow.patched(patch_id)
