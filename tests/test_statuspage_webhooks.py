"""Subscribers' webhooks reach public addresses only, checked where the connection is made:
a host that resolves inside (from the start, or only after it subscribed: DNS rebinding) is
refused at delivery unless private webhooks are allowed, while the other subscribers still get
theirs; the refusal is final and lands on the incident's timeline. A local receiver on
127.0.0.1 stands for the inside, a local aiosmtpd server for the mail.
"""

from __future__ import annotations

import re
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.services import StatusPageActivities
from clients.archive import IncidentArchive
from clients.outbound import Mailer, SmtpServer
from clients.statuspage import StatusPagePublisher
from clients.statuspage_store import StatusPageStore
from clients.statuspage_webhooks import StatusWebhooks, WebhookRefused, reachable
from config import Settings
from localslack import SlackEmulator
from starter.api.app import create_app
from starter.desk import IncidentDesk
from tests.support import Inbox, eventually, every_run_history, local_smtp, until, upgrade_database
from workflows.models import Impact, PublicUpdate, Status
from workflows.statuspage import PublicIncident

QUEUE = "incidents-status-webhooks"
AUTH = {"Authorization": "Bearer webhook-token"}


class Receiver:
    """A webhook receiver on 127.0.0.1: what a host resolving inside would reach."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []  # (Host header, Idempotency-Key)

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append((request.host, request.headers.get("Idempotency-Key", "")))
        return web.json_response({"ok": True})


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[tuple[Receiver, int]]:
    hook = Receiver()
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield hook, runner.addresses[0][1]
    finally:
        await runner.cleanup()


@pytest.fixture(scope="module")
def inbox() -> Iterator[Inbox]:
    with local_smtp() as handler:
        yield handler


@pytest.fixture
def store(tmp_path: Path) -> StatusPageStore:
    archive = IncidentArchive(f"sqlite:///{tmp_path}/incidents.db")
    upgrade_database(f"sqlite:///{tmp_path}/incidents.db")
    return StatusPageStore(archive.engine)


class Dns(AbstractResolver):
    """A name server that answers each name from a list, one answer per question, the last
    one from then on: a host that rebinds to another address between two lookups."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        queue = self.answers[host]
        address = queue.pop(0) if len(queue) > 1 else queue[0]
        return [
            ResolveResult(
                hostname=host, host=address, port=port, family=socket.AF_INET, proto=0, flags=0
            )
        ]

    async def close(self) -> None:
        pass


def subscribed(store: StatusPageStore, kind: str, address: str) -> int:
    _, token = store.subscribe(kind, address, [])
    subscriber = store.confirm(token)
    assert subscriber is not None
    return subscriber.id


def public_incident() -> PublicIncident:
    now = datetime.now(UTC) + timedelta(seconds=1)  # after the subscribers confirmed
    return PublicIncident(
        id=f"incident-{uuid.uuid4().hex[:6]}",
        number=7,
        title="Checkout fails",
        impact=Impact.MAJOR,
        status=Status.INVESTIGATING,
        declared_at=now,
        updates=[PublicUpdate(at=now, status=Status.INVESTIGATING, message="Looking.")],
    )


def status_activities(
    store: StatusPageStore, inbox: Inbox, webhooks: StatusWebhooks
) -> StatusPageActivities:
    mail = Mailer(SmtpServer("127.0.0.1", inbox.port, sender="status@example.com"))
    publisher = StatusPagePublisher(store, mail, webhooks, "https://status.example.com")
    return StatusPageActivities(publisher)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:4700::1111", True),
        ("127.0.0.1", False),
        ("10.0.0.7", False),
        ("192.168.1.1", False),
        ("100.64.0.1", False),  # shared (carrier-grade NAT)
        ("169.254.169.254", False),  # a cloud's metadata service
        ("0.0.0.0", False),
        ("224.0.0.1", False),  # multicast
        ("240.0.0.1", False),  # reserved
        ("::1", False),
        ("fe80::1", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped
        ("2002:7f00:1::1", False),  # 6to4 around 127.0.0.1
        ("64:ff9b::a00:7", False),  # NAT64 around 10.0.0.7
        ("64:ff9b::5db8:d822", True),  # NAT64 around 93.184.216.34
    ],
)
def test_webhooks_reach_public_unicast_addresses_only(address: str, public: bool) -> None:
    assert reachable(address) is public


@pytest.mark.parametrize(
    "url",
    ["https://Z\u0086\u00cd/hook", "http://[::1/hook", "https://x:99999/", "http:///hook"],
)
async def test_a_url_naming_no_host_to_call_is_refused_not_failed(url: str) -> None:
    with pytest.raises(WebhookRefused):
        await StatusWebhooks(private_allowed=True).check(url)
    with pytest.raises(WebhookRefused):
        await StatusWebhooks(private_allowed=True).post(url, {}, {})


async def test_delivery_to_a_host_resolving_to_loopback_is_refused_while_others_get_theirs(
    store: StatusPageStore, inbox: Inbox, receiver: tuple[Receiver, int]
) -> None:
    hook, port = receiver
    before = len(hook.calls)
    hook_id = subscribed(store, "webhook", f"http://localhost:{port}/hook")
    email_id = subscribed(store, "email", "ops@example.com")
    incident = public_incident()
    activities = status_activities(store, inbox, StatusWebhooks(private_allowed=False))
    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(activities.notify_subscribers, incident)
    assert refused.value.non_retryable and refused.value.type == "WebhookRefused"
    assert f"webhook {hook_id}: " in str(refused.value) and "127.0.0.1" in str(refused.value)
    assert "localhost" not in str(refused.value), "the URL stays out of errors"
    assert len(hook.calls) == before, "nothing reached the inside"
    await eventually(lambda: [m for to, m in inbox.messages if "ops@example.com" in to])
    assert store.delivered(incident.id) == {(email_id, f"{incident.id}/1")}, "the email went"


async def test_delivery_to_a_host_resolving_to_loopback_goes_when_private_webhooks_are_on(
    store: StatusPageStore, inbox: Inbox, receiver: tuple[Receiver, int]
) -> None:
    hook, port = receiver
    before = len(hook.calls)
    hook_id = subscribed(store, "webhook", f"http://localhost:{port}/hook")
    incident = public_incident()
    activities = status_activities(store, inbox, StatusWebhooks(private_allowed=True))
    assert await ActivityEnvironment().run(activities.notify_subscribers, incident) == 1
    assert hook.calls[before:] == [(f"localhost:{port}", f"{incident.id}/1")]
    assert store.delivered(incident.id) == {(hook_id, f"{incident.id}/1")}


async def test_a_host_that_rebinds_inside_after_subscribing_is_refused_at_delivery(
    store: StatusPageStore, inbox: Inbox, receiver: tuple[Receiver, int]
) -> None:
    hook, port = receiver
    before = len(hook.calls)
    url = f"http://hooks.example.test:{port}/hook"
    webhooks = StatusWebhooks(
        private_allowed=False, dns=Dns({"hooks.example.test": ["93.184.216.34", "127.0.0.1"]})
    )
    await webhooks.check(url)  # public when it subscribes
    subscribed(store, "webhook", url)
    activities = status_activities(store, inbox, webhooks)
    with pytest.raises(ApplicationError, match=re.escape("not public (127.0.0.1)")):
        await ActivityEnvironment().run(activities.notify_subscribers, public_incident())
    assert len(hook.calls) == before


async def test_the_connection_goes_to_the_checked_address_under_the_urls_host_name(
    receiver: tuple[Receiver, int],
) -> None:
    hook, port = receiver
    before = len(hook.calls)
    url = f"http://hooks.example.test:{port}/hook"
    inside = Dns({"hooks.example.test": ["127.0.0.1"]})
    with pytest.raises(WebhookRefused):
        await StatusWebhooks(private_allowed=False, dns=inside).post(url, {}, {})
    await StatusWebhooks(private_allowed=True, dns=inside).post(url, {}, {"Idempotency-Key": "k"})
    assert hook.calls[before:] == [(f"hooks.example.test:{port}", "k")]
    with pytest.raises(WebhookRefused):  # an address literal is checked as well
        await StatusWebhooks(private_allowed=False).post(f"http://127.0.0.1:{port}/hook", {}, {})
    assert len(hook.calls) == before + 1


async def test_a_refused_webhook_is_told_on_the_timeline_and_not_tried_again(
    client: Client,
    slack: SlackEmulator,
    worker: None,
    tmp_path_factory: pytest.TempPathFactory,
    receiver: tuple[Receiver, int],
) -> None:
    from worker import build_worker

    hook, port = receiver
    before = len(hook.calls)
    folder = tmp_path_factory.mktemp("status-webhooks")
    upgrade_database(f"sqlite:///{folder}/incidents.db")
    settings = Settings(
        task_queue=QUEUE,
        slack_api_url=slack.base_url,
        broadcast_channel="incidents",
        database_url=f"sqlite:///{folder}/incidents.db",
        api_tokens="webhook-token",
        status_private_webhooks=False,
    )
    desk = IncidentDesk(client, QUEUE, settings.policy)
    async with httpx.AsyncClient() as http, build_worker(client, settings, http):
        # Subscribed while it resolved outside; it resolves to this machine now.
        store = StatusPageStore(IncidentArchive(settings.database_url.get_secret_value()).engine)
        hook_id = subscribed(store, "webhook", f"http://localhost:{port}/hook")
        transport = httpx.ASGITransport(app=create_app(settings, desk=desk))
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as api:
            declared = await api.post(
                "/incidents",
                params={"wait": "true"},
                headers=AUTH,
                json={"title": f"Refused hook {uuid.uuid4().hex[:6]}", "severity": "sev2"},
            )
            assert declared.status_code == 201, declared.text
            incident_id = declared.json()["id"]
            public = {"message": "Checkout fails for some.", "by": "U0ALICE01"}
            posted = await api.post(f"/incidents/{incident_id}/public", headers=AUTH, json=public)
            assert posted.status_code == 200, posted.text

            async def problems() -> list[str]:
                shown = (await api.get(f"/incidents/{incident_id}", headers=AUTH)).json()
                return [e["text"] for e in shown["timeline"] if e["kind"] == "problem"]

            told = "could not tell the status page's subscribers: WebhookRefused: refused "
            told += f"webhook {hook_id}: the host resolves to addresses that are not public"
            assert await until(problems, lambda seen: any(told in t for t in seen), timeout=20)
    events = await every_run_history(client, incident_id)
    notify = {
        e.event_id
        for e in events
        if e.activity_task_scheduled_event_attributes.activity_type.name
        == "status_page_notify_subscribers"
    }
    attempts = [
        e.activity_task_started_event_attributes.attempt
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        and e.activity_task_started_event_attributes.scheduled_event_id in notify
    ]
    assert attempts == [1], "refused once, not retried"
    assert len(hook.calls) == before
