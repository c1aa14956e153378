"""The people directory against the emulator: ids, mentions, handles and emails to ids."""

from __future__ import annotations

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from clients.slack_people import SlackPeople, UnknownPerson
from localslack import BOT_TOKEN, SlackEmulator


@pytest.fixture
async def emu():
    async with SlackEmulator() as emulator:
        yield emulator


async def test_handles_are_found_across_pages_and_the_list_is_read_once_while_fresh(emu):
    directory = SlackPeople(AsyncWebClient(base_url=emu.base_url, token=BOT_TOKEN), page_size=2)
    assert await directory.resolve("erin") == "U0ERIN005"
    assert await directory.resolve("@Alice") == "U0ALICE01"
    assert await directory.resolve("  <@U0BOB0002|bob> ") == "U0BOB0002"
    assert await directory.resolve("U0NOTLOOKEDUP") == "U0NOTLOOKEDUP"  # ids pass as they are
    pages = len(emu.calls_to("users.list"))
    assert pages >= 3  # seven members, two a page
    assert await directory.resolve("dave") == "U0DAVE004"
    assert len(emu.calls_to("users.list")) == pages  # answered from the fresh list


async def test_emails_are_looked_up_and_unknown_people_are_named(emu):
    directory = SlackPeople(AsyncWebClient(base_url=emu.base_url, token=BOT_TOKEN))
    assert await directory.resolve("Carol@Example.com") == "U0CAROL03"
    assert await directory.resolve("carol@example.com") == "U0CAROL03"
    assert len(emu.calls_to("users.lookupByEmail")) == 1
    for given in ("mallory", "zed@example.com", "", "x" * 300, "<!channel>"):
        with pytest.raises(UnknownPerson) as refused:
            await directory.resolve(given)
        assert "unknown person" in str(refused.value)
    assert len(emu.calls_to("users.list")) == 1  # a miss re-reads at most every few seconds


async def test_without_slack_only_ids_are_taken():
    directory = SlackPeople(None)
    assert await directory.resolve("<@U0BOB0002>") == "U0BOB0002"
    with pytest.raises(UnknownPerson):
        await directory.resolve("bob")


async def test_the_same_resolver_expands_the_people_a_policy_names(emu):
    people = SlackPeople(AsyncWebClient(base_url=emu.base_url, token=BOT_TOKEN))
    assert await people.user_ids("S0ONCALL1") == ["U0ALICE01", "U0BOB0002"]
    assert await people.user_ids("@carol") == ["U0CAROL03"]
    assert await people.user_ids("erin@example.com") == ["U0ERIN005"]
    assert await people.user_ids("U0NOBODY9") == ["U0NOBODY9"]  # Slack says who it knows
    with pytest.raises(UnknownPerson) as missing:
        await people.user_ids("@mallory")
    assert missing.value.code == "user_not_found"
    with pytest.raises(UnknownPerson) as group:
        await people.user_ids("S0NOSUCH1")
    assert group.value.code == "no_such_subteam"
    assert await people.mention_ids(["@carol", "@mallory"]) == ["U0CAROL03", "@mallory"]
