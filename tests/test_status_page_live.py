"""The status page end to end: a public incident from the workflow to /status, the JSON and
the feed; subscribers confirmed by the button behind their link, told once per public update by
email (a local aiosmtpd server) and by webhook (a local receiver that fails its first delivery);
one-click unsubscribe; and a screenshot of the page in headless Chromium (Debian's) during the
incident. The subscribe form is in tests/test_status_page_form.py.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from fastapi import FastAPI
from playwright.async_api import async_playwright
from temporalio.client import Client

from config import Settings
from localslack import SlackEmulator
from starter.api.app import create_app
from starter.desk import IncidentDesk
from tests.support import Inbox, eventually, local_smtp, serve_http, until, upgrade_database
from tests.test_after_resolution import API_TOKEN, cli
from tests.test_localslack_browser import CHROMIUM, FLAGS

QUEUE = "incidents-status-page"
AUTH = {"Authorization": "Bearer status-token"}
PUBLIC_URL = "http://status.test"
SHOTS = Path(os.environ.get("SCREENSHOT_DIR", ".data/screenshots"))
POLICY = """
[severities.sev2]
description = "Part of the product is degraded"
escalation = []

[components.Checkout]
group = "Shop"
[components.Search]
group = "Shop"
[components.API]
group = "Platform"
[components.Billing]
group = "Platform"
"""


class Receiver:
    """A subscriber's webhook: keeps every call, and fails the first public update it gets."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []  # (Idempotency-Key, body)
        self.accepted: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        key = request.headers.get("Idempotency-Key", "")
        self.calls.append((key, body))
        if body["type"] == "public_update" and len(self.calls) == 2:
            return web.Response(status=503, text="busy")
        if body["type"] == "public_update":
            self.accepted.append(key)
        return web.json_response({"ok": True})


@pytest.fixture(scope="module")
def inbox() -> Iterator[Inbox]:
    with local_smtp() as handler:
        yield handler


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    hook = Receiver()
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield hook, f"http://127.0.0.1:{port}/hook"
    finally:
        await runner.cleanup()


@pytest.fixture(scope="module")
async def status_app(
    client: Client,
    slack: SlackEmulator,
    inbox: Inbox,
    tmp_path_factory: pytest.TempPathFactory,
    worker: None,
) -> AsyncIterator[FastAPI]:
    from worker import build_worker

    folder = tmp_path_factory.mktemp("status")
    (folder / "policy.toml").write_text(POLICY)
    upgrade_database(f"sqlite:///{folder}/incidents.db")
    settings = Settings(
        task_queue=QUEUE,
        slack_api_url=slack.base_url,
        broadcast_channel="incidents",
        smtp_host="127.0.0.1",
        smtp_port=inbox.port,
        smtp_from="status@example.com",
        database_url=f"sqlite:///{folder}/incidents.db",
        policy_file=str(folder / "policy.toml"),
        public_url=PUBLIC_URL,
        api_tokens=f"status-token,{API_TOKEN}",
        status_page_title="Acme",
        status_private_webhooks=True,  # the receiver is on 127.0.0.1
    )
    desk = IncidentDesk(client, QUEUE, settings.policy)
    async with httpx.AsyncClient() as http, build_worker(client, settings, http):
        yield create_app(settings, desk=desk)


@pytest.fixture(scope="module")
async def status_api(status_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=status_app)
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL, timeout=60) as api:
        yield api


@pytest.fixture(scope="module")
async def served(status_app: FastAPI) -> AsyncIterator[str]:
    """The same API over HTTP (uvicorn on a free port), for the CLI."""
    async with serve_http(status_app) as url:
        yield url


def link(text: str, kind: str) -> str:
    found = re.search(rf"{PUBLIC_URL}(/status/subscribers/{kind}\?token=[\w-]+)", text)
    assert found, text
    return found.group(1)


def messages_to(inbox: Inbox, address: str, subject: str = "") -> list[Message]:
    return [m for to, m in inbox.messages if address in to and subject in str(m["Subject"])]


def mails_to(inbox: Inbox, address: str, subject: str = "") -> list[str]:
    return [m.get_payload(decode=True).decode() for m in messages_to(inbox, address, subject)]


async def confirm(api: httpx.AsyncClient, url: str) -> None:
    """What the address's owner does: open the link, then press the page's one button."""
    page = await api.get(url)
    assert page.status_code == 200 and "Confirm your subscription" in page.text, page.text
    assert re.search(r'<form method="post" action="\?token=[\w-]+">', page.text), page.text
    confirmed = await api.post(url)
    assert confirmed.status_code == 200 and "Subscribed" in confirmed.text, confirmed.text


async def subscribe_by_email(
    api: httpx.AsyncClient, inbox: Inbox, address: str, components: list[str]
) -> None:
    answer = await api.post(
        "/status/subscribers", json={"email": address, "components": components}
    )
    assert answer.status_code == 202, answer.text
    confirmation = await eventually(lambda: mails_to(inbox, address, "Confirm"))
    await confirm(api, link(confirmation[0], "confirm"))


async def page_json(api: httpx.AsyncClient) -> dict[str, Any]:
    answer = await api.get("/status.json")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def statuses(page: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["status"] for c in page["components"]}


async def screenshot(html: str) -> Path:
    if not shutil.which(CHROMIUM):
        pytest.fail(f"Chromium is missing at {CHROMIUM}: `sudo apt-get install -y chromium`")
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / "status-page.png"
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        async with async_playwright() as playwright:
            context = await playwright.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                args=FLAGS,
                headless=True,
                viewport={"width": 430, "height": 932},  # a phone: the page must read there
            )
            try:
                page = await context.new_page()
                await page.set_content(html)
                assert await page.locator("h1").count() == 1
                width = await page.evaluate("document.documentElement.scrollWidth")
                assert width <= 430, "the page scrolls sideways on a phone"
                await page.screenshot(path=str(shot), full_page=True)
            finally:
                await context.close()
    return shot


async def test_a_public_incident_reaches_the_page_and_each_subscriber_once(
    status_api: httpx.AsyncClient, inbox: Inbox, receiver: tuple[Receiver, str]
) -> None:
    api, (hook, hook_url) = status_api, receiver
    await subscribe_by_email(api, inbox, "ops@example.com", ["Checkout"])
    await subscribe_by_email(api, inbox, "search@example.com", ["Search"])
    # Subscribed, pending or new: one answer, so nobody learns who subscribes; nothing is sent
    # again to an address subscribed or with a pending confirmation.
    new = await api.post("/status/subscribers", json={"email": "late@example.com"})
    assert new.status_code == 202 and new.json()["status"] == "requested"
    for address in ("Ops@Example.com", "late@example.com"):
        again = await api.post("/status/subscribers", json={"email": address})
        assert (again.status_code, again.json()) == (new.status_code, new.json())
    await eventually(lambda: mails_to(inbox, "late@example.com"))
    await asyncio.sleep(0.5)
    assert len(mails_to(inbox, "late@example.com")) == 1  # one pending confirmation, not two
    assert len(mails_to(inbox, "ops@example.com", "Confirm")) == 1
    answer = await api.post("/status/subscribers", json={"webhook": hook_url})
    assert answer.status_code == 202, answer.text
    await confirm(api, hook.calls[0][1]["confirm_url"].removeprefix(PUBLIC_URL))
    bad = await api.post(
        "/status/subscribers", json={"email": "x@example.com", "webhook": hook_url}
    )
    assert bad.status_code == 422

    title = f"Card payments <fail> {uuid.uuid4().hex[:6]}"
    declared = await api.post(
        "/incidents",
        params={"wait": "true"},
        headers=AUTH,
        json={
            "title": title,
            "severity": "sev2",
            "impact": "major",
            "components": ["Checkout"],
            "commander": "U0ALICE01",
        },
    )
    assert declared.status_code == 201, declared.text
    incident_id = declared.json()["id"]
    page = await page_json(api)
    assert incident_id not in {i["id"] for i in page["active_incidents"]}  # not public yet

    first = {"message": "Some card payments fail; we are on it.", "by": "U0ALICE01"}
    posted = await api.post(f"/incidents/{incident_id}/public", headers=AUTH, json=first)
    assert posted.status_code == 200, posted.text
    assert await until(
        lambda: page_json(api), lambda p: any(i["id"] == incident_id for i in p["active_incidents"])
    )
    page = await page_json(api)
    assert statuses(page) == {
        "Checkout": "partial_outage",  # major impact
        "Search": "operational",
        "API": "operational",
        "Billing": "operational",
    }
    assert page["status"] == "partial_outage"
    second = {"message": "A card network times out; traffic is rerouted.", "status": "identified"}
    posted = await api.post(f"/incidents/{incident_id}/public", headers=AUTH, json=second)
    assert posted.status_code == 200, posted.text
    assert await until(
        lambda: page_json(api),
        lambda p: (
            [len(i["updates"]) for i in p["active_incidents"] if i["id"] == incident_id] == [2]
        ),
    )
    html = (await api.get("/status")).text
    assert "Card payments &lt;fail&gt;" in html and "traffic is rerouted" in html
    assert "<fail>" not in html
    shot = await screenshot(html)
    assert shot.stat().st_size > 10_000

    resolved = await api.post(f"/incidents/{incident_id}/resolve", headers=AUTH, json={})
    assert resolved.status_code == 200, resolved.text
    assert await until(lambda: page_json(api), lambda p: not p["active_incidents"])
    page = await page_json(api)
    assert set(statuses(page).values()) == {"operational"}
    past = next(i for i in page["past_incidents"] if i["id"] == incident_id)
    assert [u["status"] for u in past["updates"]] == ["investigating", "identified", "resolved"]
    feed = (await api.get("/status/feed.atom")).text
    assert "traffic is rerouted" in feed and incident_id in feed

    # Three public updates: three emails and three webhook deliveries, however retried.
    mails = await eventually(lambda: len(mails_to(inbox, "ops@example.com", title)) >= 3)
    await eventually(lambda: len(hook.accepted) >= 3, timeout=20)
    await asyncio.sleep(2)  # a duplicate would come now
    assert mails and len(mails_to(inbox, "ops@example.com", title)) == 3
    assert mails_to(inbox, "search@example.com", title) == []  # Search was not touched
    keys = [key for key, body in hook.calls if body["type"] == "public_update"]
    assert len(keys) == 4 and keys[0] == keys[1]  # the first failed and was sent again
    assert sorted(hook.accepted) == sorted(set(hook.accepted)) and len(hook.accepted) == 3

    update = messages_to(inbox, "ops@example.com", title)[0]
    unsubscribe = link(update.get_payload(decode=True).decode(), "unsubscribe")
    assert update["List-Unsubscribe"] == f"<{PUBLIC_URL}{unsubscribe}>"
    assert update["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"  # RFC 8058
    for _ in range(2):  # a mail scanner following the link changes nothing
        shown = await api.get(unsubscribe)
        assert shown.status_code == 200 and '<button type="submit">Unsubscribe' in shown.text
    one_click = {"List-Unsubscribe": "One-Click"}  # what a mail client's button posts
    gone = await api.post(unsubscribe, data=one_click)
    assert gone.status_code == 200 and "Unsubscribed" in gone.text, gone.text
    assert (await api.post(unsubscribe, data=one_click)).status_code == 404
    after = {"message": "The retrospective found the cause.", "status": "resolved"}
    posted = await api.post(f"/incidents/{incident_id}/public", headers=AUTH, json=after)
    assert posted.status_code == 200, posted.text
    await eventually(lambda: len(hook.accepted) >= 4, timeout=20)
    await asyncio.sleep(1)
    assert len(mails_to(inbox, "ops@example.com", title)) == 3  # unsubscribed: no fourth


async def test_maintenance_is_set_by_operators_and_shown_to_everyone(
    status_api: httpx.AsyncClient,
) -> None:
    api = status_api
    body = {"maintenance": True}
    assert (await api.put("/status/components/Billing", json=body)).status_code == 401
    assert (await api.put("/status/components/Nope", json=body, headers=AUTH)).status_code == 404
    answer = await api.put("/status/components/Billing", json=body, headers=AUTH)
    assert answer.status_code == 200, answer.text
    assert statuses(await page_json(api))["Billing"] == "under_maintenance"
    answer = await api.put("/status/components/Billing", json={"maintenance": False}, headers=AUTH)
    assert statuses(await page_json(api))["Billing"] == "operational"


async def test_public_updates_are_refused_with_a_reason(status_api: httpx.AsyncClient) -> None:
    api = status_api
    declared = await api.post(
        "/incidents",
        params={"wait": "true"},
        headers=AUTH,
        json={"title": f"Refusals {uuid.uuid4().hex[:6]}", "severity": "sev2"},
    )
    incident_id = declared.json()["id"]
    unknown = {"message": "x", "components": ["Nowhere"]}
    answer = await api.post(f"/incidents/{incident_id}/public", headers=AUTH, json=unknown)
    assert answer.status_code == 409 and "Nowhere" in answer.text
    empty = await api.post(f"/incidents/{incident_id}/public", headers=AUTH, json={"message": ""})
    assert empty.status_code == 422


async def test_the_cli_posts_public_updates_and_sets_maintenance(
    status_api: httpx.AsyncClient, served: str
) -> None:
    api = status_api
    declared = await api.post(
        "/incidents",
        params={"wait": "true"},
        headers=AUTH,
        json={
            "title": f"Search slow {uuid.uuid4().hex[:6]}",
            "severity": "sev2",
            "components": ["Search"],
            "impact": "minor",
        },
    )
    incident_id = declared.json()["id"]
    code, out, err = await cli(
        served,
        "public",
        incident_id,
        "Search is slow for some",
        "--impact",
        "critical",
        "--component",
        "Search",
        "--component",
        "API",
    )
    assert code == 0, err
    assert "On the status page (investigating): Search is slow for some" in out
    assert await until(
        lambda: page_json(api),
        lambda p: statuses(p)["API"] == statuses(p)["Search"] == "major_outage",
    )
    code, out, err = await cli(served, "maintenance", "Billing")
    assert code == 0 and "under maintenance" in out, err
    assert statuses(await page_json(api))["Billing"] == "under_maintenance"
    code, out, err = await cli(served, "maintenance", "Billing", "--off")
    assert code == 0 and statuses(await page_json(api))["Billing"] == "operational"
    code, _, err = await cli(served, "public", incident_id, "x", "--component", "Nowhere")
    assert code != 0 and "Nowhere" in err
    resolved = await api.post(f"/incidents/{incident_id}/resolve", headers=AUTH, json={})
    assert resolved.status_code == 200
    assert await until(lambda: page_json(api), lambda p: statuses(p)["API"] == "operational")


@pytest.mark.parametrize(
    "webhook", ["http://127.0.0.1:9/hook", "http://10.0.0.7/hook", "http://localhost/hook"]
)
async def test_webhooks_to_private_addresses_are_refused_by_default(
    tmp_path: Path, webhook: str
) -> None:
    upgrade_database(f"sqlite:///{tmp_path}/incidents.db")
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/incidents.db",
        slack_api_url="http://127.0.0.1:9/api/",
    )
    transport = httpx.ASGITransport(app=create_app(settings, desk=None))
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as api:
        answer = await api.post("/status/subscribers", json={"webhook": webhook})
    assert answer.status_code == 422 and "public addresses" in answer.text
