"""Paging as Temporal activities, over ``clients.paging``: one activity per destination, and
a destination's refusal (a 4xx other than 429) is not retried."""

from __future__ import annotations

from temporalio import activity

from activities import non_retryable
from clients.paging import Pager
from workflows.effects import SendPage


class PagingActivities:
    def __init__(self, pager: Pager) -> None:
        self.pager = pager

    @activity.defn(name="page_pagerduty")
    async def send_pagerduty(self, request: SendPage) -> None:
        with non_retryable():
            await self.pager.send_pagerduty(request)

    @activity.defn(name="page_webhook")
    async def send_webhook(self, request: SendPage) -> None:
        with non_retryable():
            await self.pager.send_webhook(request)
