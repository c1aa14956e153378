"""The API's bounds: big bodies get 413 before they are read, errors never echo big input."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field

from starter.api import errors as limits


class Echo(BaseModel):
    title: str = Field(max_length=200)
    components: list[str] = Field(default_factory=list, max_length=50)


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()

    @app.post("/echo")
    async def echo(body: Echo) -> Echo:
        return body

    limits.install(app, limit=4096)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        yield http


async def test_a_body_over_the_limit_gets_413_naming_the_limit(api: httpx.AsyncClient) -> None:
    response = await api.post("/echo", content=b"x" * 5000, headers={"content-type": "json"})
    assert response.status_code == 413
    assert "limit of 4096 bytes" in response.json()["detail"]


async def test_a_streamed_body_over_the_limit_gets_413_too(api: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b'{"title": "' + b"x" * 1000

    response = await api.post("/echo", content=chunks())
    assert response.status_code == 413


async def test_a_body_within_the_limit_is_served(api: httpx.AsyncClient) -> None:
    response = await api.post("/echo", json={"title": "Checkout failing"})
    assert response.status_code == 200
    assert response.json()["title"] == "Checkout failing"


async def test_422_names_the_field_but_echoes_only_a_short_prefix(api: httpx.AsyncClient) -> None:
    response = await api.post("/echo", json={"title": "y" * 3000, "components": ["a"] * 60})
    assert response.status_code == 422
    problems = {tuple(p["loc"]): p for p in response.json()["detail"]}
    title = problems[("body", "title")]
    assert "at most 200 characters" in title["msg"]
    assert title["input"] == "y" * limits.ECHO_CHARS + "…"
    assert problems[("body", "components")]["input"] == "<list of 60 items>"
    assert len(response.content) < 1000


async def test_a_client_budget_counts_each_client_and_an_ipv6_network_as_one() -> None:
    budget = limits.ClientBudget(allowed=2, window=0.3)
    assert budget.spend("192.0.2.1") is None and budget.spend("192.0.2.1") is None
    assert budget.spend("192.0.2.1") == 1, "the third in the window waits"
    assert budget.spend("192.0.2.2") is None, "another client has its own count"
    assert budget.spend("2001:db8::1") is None and budget.spend("2001:db8::ffff") is None
    assert budget.spend("2001:db8::2:3") is not None, "one /64, one client"
    assert budget.spend("2001:db8:0:1::1") is None
    await asyncio.sleep(0.35)
    assert budget.spend("192.0.2.1") is None, "a new window starts afresh"
