"""The emulator's page in headless Chromium: a new user runs an incident from the browser.

Chromium is Debian's (`/usr/bin/chromium`), driven through Playwright's protocol client; no
browser is ever downloaded. `make test` installs Chromium when it is missing and it can.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import BrowserContext, Page, async_playwright
from slack_sdk.web.async_client import AsyncWebClient

from config import Settings
from localslack import SlackEmulator
from starter.desk import IncidentDesk
from tests.support import serve_slack_app

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Someone no other test acts as, so every reply on the page is this test's.
ERIN = "U0ERIN005"
SHOTS = Path(os.environ.get("SCREENSHOT_DIR", ".data/screenshots"))
HANDOFF_TOKEN = "xoxb-handoff"  # what a handoff and a page need, whatever the manifest says


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[BrowserContext]:
    if not shutil.which(CHROMIUM):
        pytest.fail(
            f"Chromium is missing at {CHROMIUM}: `sudo apt-get install -y chromium` "
            "(or set CHROMIUM to a Chromium binary); `make test` installs it when it can"
        )
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        async with async_playwright() as playwright:
            # A fresh profile (the user data dir) per run: no state from earlier runs.
            context = await playwright.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                args=FLAGS,
                headless=True,
                viewport={"width": 1200, "height": 1000},
            )
            try:
                yield context
            finally:
                await context.close()


@pytest.fixture(scope="module")
async def app_url(
    settings: Settings, desk: IncidentDesk, slack: SlackEmulator
) -> AsyncIterator[str]:
    async with serve_slack_app(settings, desk, slack, "browser-test-secret") as url:
        yield url


async def test_a_new_user_declares_acknowledges_and_resolves_from_the_page(
    browser: BrowserContext, app_url: str, slack: SlackEmulator, desk: IncidentDesk
):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = await browser.new_page()
    try:
        await run_an_incident(page, slack, desk)
    except Exception:
        await page.screenshot(path=str(SHOTS / "failed.png"))
        raise
    finally:
        await page.close()


async def run_an_incident(page: Page, slack: SlackEmulator, desk: IncidentDesk) -> None:
    root = slack.base_url.removesuffix("api/")
    await page.goto(root + "?as=" + ERIN)

    title = "Checkout failing"
    await page.fill("input[name=text]", f"/incident declare sev1 {title}")
    await page.click("#console button.primary")
    reply = page.locator("#replies li").first
    await reply.get_by_text("Declared").wait_for(timeout=30_000)
    label = re.search(r"INC-\d+", await reply.inner_text())
    assert label is not None
    state = await desk.get(label.group(0))
    assert state.channel is not None and state.declared_by == ERIN
    await page.locator(f"h2#{state.channel.id}").wait_for(timeout=10_000)
    await page.screenshot(path=str(SHOTS / "1-declared.png"), full_page=False)

    await reply.get_by_role("button", name="Acknowledge").click()
    await (
        page.locator("#replies li")
        .first.get_by_text(":no_entry:")
        .or_(page.locator(f"section:has(h2#{state.channel.id})").get_by_text("acknowledged"))
        .first.wait_for(timeout=30_000)
    )
    acknowledged = await desk.get(state.id)
    assert acknowledged.acknowledged_by == ERIN
    await page.screenshot(path=str(SHOTS / "2-acknowledged.png"))

    await (
        page.locator("#replies li")
        .filter(has_text="Declared")
        .first.get_by_role("button", name="Update status")
        .click()
    )
    modal = page.locator("#modals .modal")
    await modal.wait_for(timeout=10_000)
    await modal.locator("select[name=status]").select_option("identified")
    await modal.locator("textarea[name=message]").fill("bad deploy <b>found</b> & rolled back")
    await page.screenshot(path=str(SHOTS / "3-status-modal.png"))
    await modal.get_by_role("button", name="Update").click()
    await (
        page.locator(f"section:has(h2#{state.channel.id})")
        .get_by_text("bad deploy <b>found</b> & rolled back")
        .first.wait_for(timeout=30_000)
    )
    assert (await desk.get(state.id)).status.value == "identified"

    await page.fill("input[name=text]", "/incident resolve rolled back, all clear")
    await page.select_option("#console select[name=channel]", state.channel.id)
    await page.click("#console button.primary")
    await page.locator("#replies li").first.get_by_text("resolved").wait_for(timeout=30_000)
    await page.screenshot(path=str(SHOTS / "4-resolved.png"), full_page=False)
    final: Any = await desk.get(state.id)
    assert final.status.value == "resolved" and final.timeline[-1].actor == ERIN


async def test_the_page_shows_user_groups_and_a_page_dm_with_its_button(browser: BrowserContext):
    """What an on-call handoff and a page leave in Slack, as a person sees it."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    scopes = {"usergroups:write", "im:write", "chat:write"}
    async with SlackEmulator(scoped_tokens={HANDOFF_TOKEN: scopes}) as emulator:
        client = AsyncWebClient(base_url=emulator.base_url, token=HANDOFF_TOKEN)
        await client.usergroups_users_update(usergroup="S0ONCALL1", users=["U0CAROL03"])
        dm = (await client.conversations_open(users="U0CAROL03"))["channel"]["id"]
        acknowledge = {
            "type": "button",
            "action_id": "incident_acknowledge",
            "value": "incident-7",
            "style": "primary",
            "text": {"type": "plain_text", "text": "Acknowledge"},
        }
        text = ":pager: *INC-7 SEV1: Checkout failing* pages you"
        blocks: list[dict[str, Any]] = [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {"type": "actions", "block_id": "page", "elements": [acknowledge]},
        ]
        await client.chat_postMessage(channel=dm, text="INC-7 pages you", blocks=blocks)
        page = await browser.new_page()
        try:
            await page.goto(emulator.base_url.removesuffix("api/") + "?as=U0CAROL03")
            oncall = page.locator("#user-groups li").filter(has_text="@oncall")
            assert "@carol" in await oncall.inner_text()
            direct = page.locator(f"section:has(h2#{dm})")
            assert "Direct message with @carol" in await direct.locator("h2").inner_text()
            await direct.get_by_role("button", name="Acknowledge").wait_for(timeout=10_000)
            await page.screenshot(path=str(SHOTS / "5-user-groups-and-page-dm.png"))
        finally:
            await page.close()
