"""Update ids an incident has applied, carried across continue-as-new.

Temporal answers a repeated Update id with the first outcome, but only within one run. A
client that retries a command (same id) after the incident continued as new would have it
applied twice, so the ids travel in the state and a repeat is answered, not applied.
"""

from __future__ import annotations

from temporalio import workflow

from workflows.models import IncidentState

KEPT = 200  # the newest ids; a retry comes within seconds, not hundreds of commands later


def repeated(state: IncidentState) -> bool:
    """Whether the Update being handled was applied already (in this or an earlier run)."""
    info = workflow.current_update_info()
    return info is not None and info.id in state.applied_updates


def remember(state: IncidentState) -> None:
    info = workflow.current_update_info()
    if info is not None:
        state.applied_updates = [*state.applied_updates[-(KEPT - 1) :], info.id]
