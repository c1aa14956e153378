"""The status page's subscribe form: in headless Chromium (Debian's) with script off, on a
desktop and a phone; the confirmation email's link and its button; refusals that keep the
form filled; cross-site posts refused; one answer whatever the address; a client asking too
often told to wait. The API runs over HTTP (uvicorn) and mail goes to a local aiosmtpd server.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from playwright.async_api import BrowserContext, Page, async_playwright
from temporalio.client import Client

from clients.archive import IncidentArchive
from clients.statuspage_store import StatusPageStore
from config import Settings
from starter.api.app import create_app
from starter.desk import IncidentDesk
from starter.status.subscribing import SUBSCRIPTIONS_PER_CLIENT
from tests.support import Inbox, eventually, local_smtp, serve_http, upgrade_database
from tests.test_localslack_browser import CHROMIUM, FLAGS
from tests.test_status_page_live import POLICY, SHOTS, link, mails_to, messages_to

PUBLIC_URL = "http://status.test"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def inbox() -> Iterator[Inbox]:
    with local_smtp() as handler:
        yield handler


@pytest.fixture(scope="module")
def form_settings(tmp_path_factory: pytest.TempPathFactory, inbox: Inbox) -> Settings:
    folder = tmp_path_factory.mktemp("status-form")
    (folder / "policy.toml").write_text(POLICY)
    upgrade_database(f"sqlite:///{folder}/incidents.db")
    return Settings(
        slack_api_url="http://127.0.0.1:9/api/",
        smtp_host="127.0.0.1",
        smtp_port=inbox.port,
        smtp_from="status@example.com",
        database_url=f"sqlite:///{folder}/incidents.db",
        policy_file=str(folder / "policy.toml"),
        public_url=PUBLIC_URL,
        status_page_title="Acme",
    )


def new_app(settings: Settings, client: Client) -> FastAPI:
    """An app of its own: its own count of each client's subscription requests."""
    return create_app(settings, desk=IncidentDesk(client, "incidents-status-form", settings.policy))


@pytest.fixture(scope="module")
async def served(form_settings: Settings, client: Client) -> AsyncIterator[str]:
    async with serve_http(new_app(form_settings, client)) as url:
        yield url


@asynccontextmanager
async def chromium(viewport: dict[str, int]) -> AsyncIterator[BrowserContext]:
    """Chromium with script off: the page must work without it."""
    if not shutil.which(CHROMIUM):
        pytest.fail(f"Chromium is missing at {CHROMIUM}: `sudo apt-get install -y chromium`")
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        async with async_playwright() as playwright:
            context = await playwright.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                args=FLAGS,
                headless=True,
                viewport=viewport,  # type: ignore[arg-type]
                java_script_enabled=False,
            )
            try:
                yield context
            finally:
                await context.close()


async def shot(page: Page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def fits(page: Page) -> bool:
    width = await page.evaluate("document.documentElement.scrollWidth")
    return bool(width <= page.viewport_size["width"])  # type: ignore[index]


def confirmed_addresses(settings: Settings) -> dict[str, list[str]]:
    store = StatusPageStore(IncidentArchive(settings.database_url.get_secret_value()).engine)
    return {s.address: s.components for s in store.confirmed()}


async def test_a_visitor_subscribes_from_the_page_and_confirms_with_the_button(
    served: str, inbox: Inbox, form_settings: Settings
) -> None:
    async with chromium(DESKTOP) as desktop:
        page = await desktop.new_page()
        await page.goto(f"{served}/status")
        assert await page.locator("form.subscribe input[name=components]").count() == 4
        await shot(page, "status-page-desktop")
    async with chromium(PHONE) as phone:
        page = await phone.new_page()
        await page.goto(f"{served}/status")
        assert await fits(page), "the page scrolls sideways on a phone"
        await shot(page, "status-page-phone")
        await page.fill("#subscribe-email", "Visitor@Example.com")
        await page.check("input[name=components][value=Checkout]")
        await page.check("input[name=components][value=API]")
        await page.click("form.subscribe button[type=submit]")
        await page.wait_for_load_state()
        assert await page.locator("h1").inner_text() == "Check your inbox"
        assert "visitor@example.com" in await page.locator(".notice").inner_text()
        assert await fits(page)
        await shot(page, "status-subscribed-phone")

        confirmation = (await eventually(lambda: messages_to(inbox, "visitor@example.com")))[0]
        body = confirmation.get_payload(decode=True).decode()
        confirm = link(body, "confirm")
        assert confirmation["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        await page.goto(f"{served}{confirm}")
        assert await page.locator("h1").inner_text() == "Confirm your subscription"
        await shot(page, "status-confirm-phone")
        assert "visitor@example.com" not in confirmed_addresses(form_settings), "GET acted"
        await page.click("button[type=submit]")
        await page.wait_for_load_state()
        assert await page.locator("h1").inner_text() == "Subscribed"
    assert confirmed_addresses(form_settings)["visitor@example.com"] == ["Checkout", "API"]


async def test_a_post_from_another_sites_page_subscribes_nobody(served: str, inbox: Inbox) -> None:
    evil = f"""<form method="post" action="{served}/status/subscribe">
        <input name="email" value="victim@example.com"><button>Win a prize</button></form>"""
    async with chromium(DESKTOP) as desktop:
        page = await desktop.new_page()
        await page.set_content(evil)  # a page that is not ours: the browser says so
        async with page.expect_navigation():
            await page.click("button")
        assert await page.locator("h1").inner_text() == "Not from here"
    async with httpx.AsyncClient(base_url=served) as api:
        form = {"email": "victim@example.com"}
        for forged in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.test"}):
            answer = await api.post("/status/subscribe", data=form, headers=forged)
            assert answer.status_code == 403, answer.text
        await asyncio.sleep(0.5)
    assert mails_to(inbox, "victim@example.com") == []


async def test_a_refused_form_comes_back_filled_and_names_the_problem(
    served: str, inbox: Inbox
) -> None:
    async with httpx.AsyncClient(base_url=served) as api:
        form = {"email": "not an address", "components": ["Search", "Billing"]}
        answer = await api.post("/status/subscribe", data=form)
        assert answer.status_code == 422 and "text/html" in answer.headers["content-type"]
        assert 'value="not an address"' in answer.text and "Enter an email address" in answer.text
        assert len(re.findall(r'name="components" value="\w+" checked', answer.text)) == 2
        form = {"email": "someone@example.com", "components": ["Nowhere"]}
        answer = await api.post("/status/subscribe", data=form)
        assert answer.status_code == 422 and "Unknown components Nowhere" in answer.text
        assert 'value="someone@example.com"' in answer.text
        too_long = {"email": "a" * 250 + "@example.com"}
        assert (await api.post("/status/subscribe", data=too_long)).status_code == 422
        big = {"email": "x@example.com", "components": ["A" * 1000] * 20}
        assert (await api.post("/status/subscribe", data=big)).status_code == 413
    async with chromium(PHONE) as phone:
        page = await phone.new_page()
        await page.set_content(answer.text)
        assert await fits(page)
        await shot(page, "status-form-refused-phone")
    assert mails_to(inbox, "someone@example.com") == []


async def test_the_answer_is_the_same_for_new_pending_and_subscribed_addresses(
    served: str, inbox: Inbox
) -> None:
    async with httpx.AsyncClient(base_url=served) as api:

        async def ask(address: str) -> str:
            answer = await api.post("/status/subscribe", data={"email": address})
            assert answer.status_code == 200, answer.text
            return answer.text.replace(address, "ADDRESS")

        first = await ask("same@example.com")  # new: a confirmation goes out
        mail = (await eventually(lambda: mails_to(inbox, "same@example.com")))[0]
        assert await ask("same@example.com") == first  # pending: nothing more is sent
        await api.post(link(mail, "confirm"))
        assert await ask("same@example.com") == first  # subscribed: the same words
        assert await ask("other@example.com") == first
        await eventually(lambda: mails_to(inbox, "other@example.com"))
    assert len(mails_to(inbox, "same@example.com")) == 1


async def test_a_client_asking_too_often_is_told_when_to_come_back(
    form_settings: Settings, client: Client
) -> None:
    transport = httpx.ASGITransport(app=new_app(form_settings, client))
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as api:
        for n in range(SUBSCRIPTIONS_PER_CLIENT):
            # The form and the JSON route draw on one budget.
            if n % 2:
                answer = await api.post("/status/subscribe", data={"email": "bad"})
            else:
                answer = await api.post("/status/subscribers", json={"email": "bad"})
            assert answer.status_code == 422, answer.text
        refused = await api.post("/status/subscribe", data={"email": "late@example.com"})
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
        assert 'value="late@example.com"' in refused.text  # the form is kept
        refused = await api.post("/status/subscribers", json={"email": "late@example.com"})
        assert refused.status_code == 429 and "Retry-After" in refused.headers
