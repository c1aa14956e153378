"""The emulator's page in headless Chromium: a new user runs an incident from the browser.

Chromium is Debian's (`/usr/bin/chromium`), driven through Playwright's protocol client; no
browser is ever downloaded. `make test` installs Chromium when it is missing and it can.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import BrowserContext, Page, async_playwright
from temporalio.client import Client

from config import Settings
from config.deployment import ensure_oncall_schedules
from localslack import SlackEmulator
from localslack.posts import Channel
from starter.desk import IncidentDesk
from tests.conftest import seconds_policy
from tests.support import eventually, serve_slack_app
from worker import build_worker
from workflows.oncall.rotation import schedule_workflow_id
from workflows.policy import Policy

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
# The on-call scenario: its own emulator, worker and task queue, so the page holds only it.
ONCALL_QUEUE = "incidents-oncall-page"
SCHEDULE = "payments-primary"
SHIFT = 20.0  # seconds: a handoff, then a page well inside the incoming person's shift
ALICE, BOB = "U0ALICE01", "U0BOB0002"


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
    # The resolution by the person on the page (the report's place is noted after it).
    resolution = [entry for entry in final.timeline if entry.kind == "resolved"][-1]
    assert final.status.value == "resolved" and resolution.actor == ERIN

    # The situation report: a canvas the channel reads, linked there; its page shows it escaped.
    room = page.locator(f"section:has(h2#{state.channel.id})")
    canvas = room.get_by_role("link", name=f"{state.label} situation report")
    await canvas.wait_for(timeout=30_000)
    await room.screenshot(path=str(SHOTS / "11-channel-with-canvas.png"))
    await canvas.click()
    await page.get_by_role("heading", name="Who held which role").wait_for(timeout=10_000)
    assert await page.locator("h1").inner_text() == f"{state.label} situation report"
    await page.screenshot(path=str(SHOTS / "12-report-canvas.png"), full_page=True)


def paging_policy(start: datetime) -> Policy:
    """A seconds-scale rotation of @alice then @bob keeping @oncall, and a tier that pages it."""
    policy = seconds_policy().model_dump()
    tier = {"after": 1, "notify": [f"oncall:{SCHEDULE}"], "page": True}
    for severity in policy["severities"].values():
        severity["escalation"] = [tier]
    schedule = {
        "timezone": "Europe/Paris",
        "people": ["@alice", "@bob"],
        "shift": SHIFT,
        "start": start.isoformat(),
        "user_group": "oncall",
    }
    return Policy.model_validate({**policy, "schedules": {SCHEDULE: schedule}})


def dm_with(slack: SlackEmulator, user: str) -> Channel | None:
    return next((c for c in slack.channels.values() if c.is_im and user in c.members), None)


def texts(slack: SlackEmulator, user: str) -> list[str]:
    channel = dm_with(slack, user)
    return [str(m.get("text", "")) for m in channel.messages] if channel else []


async def test_a_handoff_and_a_page_show_in_the_dm_of_whoever_is_on_call(
    browser: BrowserContext, client: Client, settings: Settings
):
    """A real handoff (dev server, worker, API, emulator): @bob takes over from @alice, @oncall
    follows, an incident pages whoever is on call, and the page shows it as Bob sees it."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    async with (
        SlackEmulator(broadcast_channel="incidents") as slack,
        httpx.AsyncClient() as http,
    ):
        stack = settings.model_copy(
            update={
                "slack_api_url": slack.base_url,
                "task_queue": ONCALL_QUEUE,
                # A deployment of its own: its version becomes current for this queue alone.
                "deployment_name": "incidents-oncall-page",
            }
        )
        async with build_worker(client, stack, http):
            # Alice's shift began before the workflow starts and ends in 10 s (room for a slow
            # machine to start the schedule inside it): Bob takes over.
            policy = paging_policy(datetime.now(UTC) - timedelta(seconds=SHIFT - 10))
            desk = IncidentDesk(client, ONCALL_QUEUE, policy)
            async with serve_slack_app(stack, desk, slack, "oncall-page-secret") as url:
                await ensure_oncall_schedules(client, ONCALL_QUEUE, policy)
                schedule = client.get_workflow_handle(schedule_workflow_id(SCHEDULE))
                try:
                    await handoff_page_and_acknowledge(browser, slack, desk, url)
                finally:
                    await schedule.terminate("the test is over")


async def handoff_page_and_acknowledge(
    browser: BrowserContext, slack: SlackEmulator, desk: IncidentDesk, url: str
) -> None:
    on_call = f"You are on call for {SCHEDULE} until "
    await eventually(lambda: [t for t in texts(slack, BOB) if t.startswith(on_call)], timeout=20)
    over = f"Your on-call shift for {SCHEDULE} is over: <@{BOB}> is on call now."
    await eventually(lambda: over in texts(slack, ALICE), explain=lambda: texts(slack, ALICE))
    await eventually(lambda: slack.workspace.user_groups["S0ONCALL1"].users == (BOB,))

    async with httpx.AsyncClient(base_url=url) as api:
        body = {"title": "Checkout failing", "severity": "sev1", "by": "@dave"}
        declared = await api.post(
            "/incidents", json=body, headers={"Authorization": "Bearer slack-test-token"}
        )
    assert declared.status_code in (201, 202), declared.text
    label = declared.json()["label"]
    await eventually(lambda: [t for t in texts(slack, BOB) if label in t], timeout=20)
    assert not [t for t in texts(slack, ALICE) if label in t], "the page reached Bob only"
    bob = dm_with(slack, BOB)
    assert bob is not None

    page = await browser.new_page()
    try:
        await page.goto(slack.base_url.removesuffix("api/") + "?as=" + BOB)
        group = page.locator("#user-groups li").filter(has_text="@oncall")
        assert (await group.inner_text()).endswith(": @bob")
        direct = page.locator(f"section:has(h2#{bob.id})")
        assert "Direct message with @bob" in await direct.locator("h2").inner_text()
        shown = await direct.inner_text()
        assert on_call in shown and "Europe/Paris" in shown and label in shown
        assert f"@bob, on call for {SCHEDULE}" in shown, "the page says why Bob"
        acknowledge = direct.get_by_role("button", name="Acknowledge")
        await acknowledge.wait_for(timeout=10_000)
        await page.locator("#user-groups").screenshot(path=str(SHOTS / "5-oncall-user-group.png"))
        await direct.screenshot(path=str(SHOTS / "6-handoff-and-page-dm.png"))
        alice = dm_with(slack, ALICE)
        assert alice is not None
        await page.locator(f"section:has(h2#{alice.id})").screenshot(
            path=str(SHOTS / "7-handoff-told-to-the-outgoing.png")
        )
        await acknowledge.click()  # as Bob, from his DM: the incident is acknowledged
        deadline = time.monotonic() + 30
        while (await desk.get(declared.json()["id"])).acknowledged_by != BOB:
            assert time.monotonic() < deadline, "the Acknowledge button did not acknowledge"
            await asyncio.sleep(0.2)
    finally:
        await page.close()


# The flow scenario: its own emulator, worker and task queue, so its screenshots hold only it.
FLOW_QUEUE = "incidents-flow-page"
CAROL, DAVE = "U0CAROL03", "U0DAVE004"


def escalating_policy() -> Policy:
    """sev1 tells Carol in the incident's channel after 2 s unless someone acknowledges."""
    policy = seconds_policy().model_dump()
    policy["severities"]["sev1"]["escalation"] = [{"after": 2, "notify": [CAROL], "page": False}]
    return Policy.model_validate(policy)


async def test_a_pin_a_reaction_and_a_thread_run_an_incident_from_the_page(
    browser: BrowserContext, client: Client, settings: Settings
):
    """Dev server, worker, API, emulator: Erin posts in the incident's channel and pins it from
    the page (on the timeline once), reacts :eyes: to the escalation notice (acknowledged as
    her), and a status change shows as a reply in the announcement's thread in #incidents."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    async with (
        SlackEmulator(broadcast_channel="incidents") as slack,
        httpx.AsyncClient() as http,
    ):
        # A deployment of its own too: its version becomes current for this queue alone.
        update = {"slack_api_url": slack.base_url, "task_queue": FLOW_QUEUE}
        stack = settings.model_copy(update={**update, "deployment_name": FLOW_QUEUE})
        async with build_worker(client, stack, http):
            desk = IncidentDesk(client, FLOW_QUEUE, escalating_policy())
            async with serve_slack_app(stack, desk, slack, "flow-page-secret") as url:
                page = await browser.new_page()
                try:
                    await pin_react_and_follow_the_thread(page, slack, desk, url)
                except Exception:
                    await page.screenshot(path=str(SHOTS / "failed-flow.png"), full_page=True)
                    raise
                finally:
                    await page.close()


async def until(desk: IncidentDesk, ref: str, test: Any, failure: str) -> Any:
    """The incident once ``test`` holds of it, within 20 s."""
    deadline = time.monotonic() + 20
    while not test(state := await desk.get(ref)):
        assert time.monotonic() < deadline, failure
        await asyncio.sleep(0.2)
    return state


def marked(state: Any) -> list[Any]:
    return [e for e in state.timeline if e.kind == "marked_message"]


async def pin_react_and_follow_the_thread(
    page: Page, slack: SlackEmulator, desk: IncidentDesk, url: str
) -> None:
    token = {"Authorization": "Bearer slack-test-token"}
    async with httpx.AsyncClient(base_url=url, headers=token) as api:
        body = {"title": "Checkout failing", "severity": "sev1", "by": "@dave"}
        declared = await api.post("/incidents", json=body)
        assert declared.status_code in (201, 202), declared.text
        ref = declared.json()["id"]
        state = await until(desk, ref, lambda s: s.announcement and s.channel, "not announced")
        channel = state.channel.id

        await page.goto(slack.base_url.removesuffix("api/") + "?as=" + ERIN)
        room = page.locator(f"section:has(h2#{channel})")
        await room.get_by_role("button", name="Join").click()  # Erin joins, as in Slack
        said = "primary <db-1> failed over & replicas lag"
        await page.fill("input[name=text]", said)  # a plain message, not a command
        await page.select_option("#console select[name=channel]", channel)
        await page.click("#console button.primary")
        mine = room.locator("li").filter(has_text=said)
        await mine.get_by_role("button", name="Pin", exact=True).click()
        await room.locator("li.pinned").filter(has_text=said).wait_for(timeout=10_000)
        state = await until(desk, ref, marked, "the pin never reached the timeline")
        [entry] = marked(state)
        assert (entry.text, entry.actor) == (said, ERIN)

        notice = room.locator("li").filter(has_text="Escalated to level 1")
        await notice.get_by_role("button", name="+:eyes:").click(timeout=15_000)
        state = await until(
            desk, ref, lambda s: s.acknowledged_by == ERIN, "the :eyes: did not acknowledge"
        )
        assert len(marked(state)) == 1, "the pin is on the timeline once"
        await notice.get_by_role("button", name=":eyes: 1").wait_for(timeout=10_000)
        # The kickoff then says who acknowledged and offers no Acknowledge, as after the button.
        kickoff = room.locator("li.pinned").filter(has_text="SEV1 declared")
        button = kickoff.get_by_role("button", name="Acknowledge", exact=True)
        await button.wait_for(state="detached", timeout=15_000)
        assert "Acknowledged\nby @erin" in await kickoff.inner_text()
        await room.screenshot(path=str(SHOTS / "9-pinned-on-timeline.png"))

        message = "bad deploy found, rolling back"
        status = {"status": "identified", "message": message, "by": "@dave"}
        changed = await api.post(f"/incidents/{ref}/status", json=status)
        assert changed.status_code == 200, changed.text
    incidents = slack.channel_by_name("incidents")
    assert incidents is not None and state.announcement is not None
    broadcast = page.locator(f"section:has(h2#{incidents.id})")
    await broadcast.locator("ol.thread").get_by_text(message).wait_for(timeout=15_000)
    top = [m for m in incidents.messages if m.get("thread_ts", m["ts"]) == m["ts"]]
    assert [m["ts"] for m in top] == [state.announcement.ts], "one message per incident"
    await broadcast.screenshot(path=str(SHOTS / "10-broadcast-thread.png"))

    # Resolved: the report's timeline carries the pinned message, escaped, as Erin wrote it.
    async with httpx.AsyncClient(base_url=url, headers=token) as api:
        body = {"message": "rolled back", "by": "@dave"}
        resolved = await api.post(f"/incidents/{ref}/resolve", json=body)
        assert resolved.status_code == 200, resolved.text
    canvas = room.get_by_role("link", name=f"{state.label} situation report")
    await canvas.wait_for(timeout=30_000)
    await canvas.click()
    timeline = page.locator("li").filter(has_text="marked_message").filter(has_text=said)
    await timeline.wait_for(timeout=10_000)
    await page.screenshot(path=str(SHOTS / "13-timeline-from-pins.png"), full_page=True)
