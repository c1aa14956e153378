"""IncidentRegistry: the one place incident numbers and idempotency keys are handed out.

A singleton workflow, so numbers are sequential and never handed out twice, even when many
people declare at once: Updates to one workflow are applied one at a time, durably. It also
remembers which idempotency key belongs to which open incident, so an alert firing twice or a
retried API call finds the incident it already declared.
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from temporalio import workflow

REGISTRY_ID = "incident-registry"


class RegistryState(BaseModel):
    next_number: int = 1
    open_keys: dict[str, int] = Field(default_factory=dict)


class Reservation(BaseModel):
    idempotency_key: str | None = None


class Reserved(BaseModel):
    number: int
    existing: bool  # True: the key belongs to an open incident, which is the answer


class KeyRelease(BaseModel):
    idempotency_key: str
    number: int


@workflow.defn
class IncidentRegistry:
    @workflow.init
    def __init__(self, state: RegistryState) -> None:
        self.state = state

    @workflow.run
    async def run(self, state: RegistryState) -> None:
        # The registry lives for ever; continue-as-new keeps its history short.
        await workflow.wait_condition(lambda: workflow.info().is_continue_as_new_suggested())
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self.state)

    @workflow.update
    def reserve(self, reservation: Reservation) -> Reserved:
        key = reservation.idempotency_key
        if key and key in self.state.open_keys:
            return Reserved(number=self.state.open_keys[key], existing=True)
        number = self.state.next_number
        self.state.next_number += 1
        if key:
            self.state.open_keys[key] = number
        return Reserved(number=number, existing=False)

    @workflow.signal
    def release(self, release: KeyRelease) -> None:
        """The incident holding this key is resolved: the next alert declares a new one."""
        if self.state.open_keys.get(release.idempotency_key) == release.number:
            del self.state.open_keys[release.idempotency_key]

    @workflow.query
    def current(self) -> RegistryState:
        return self.state
