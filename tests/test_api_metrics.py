"""The API's Prometheus metrics: route templates as labels, the token required to scrape."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, HTTPException

from config import Settings
from starter.api.metrics import ApiMetrics, RequestRecord, router

AUTH = {"Authorization": "Bearer scrape-token"}


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.state.settings = Settings(api_tokens="scrape-token")
    metrics = ApiMetrics()

    @app.get("/incidents/{incident_id}")
    async def one(incident_id: str) -> dict[str, str]:
        if incident_id == "incident-404":
            raise HTTPException(404)
        return {"id": incident_id}

    app.include_router(router(metrics))
    app.add_middleware(RequestRecord, metrics=metrics)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        yield http


async def test_requests_are_counted_by_route_template_not_by_incident(api) -> None:
    for ref in ("incident-1", "incident-2", "incident-404"):
        await api.get(f"/incidents/{ref}")
    scraped = (await api.get("/metrics", headers=AUTH)).text
    ok = 'incident_api_requests_total{method="GET",route="/incidents/{incident_id}",status="200"}'
    assert f"{ok} 2.0" in scraped
    assert 'route="/incidents/{incident_id}",status="404"} 1.0' in scraped
    assert "incident-1" not in scraped
    assert 'incident_api_request_seconds_bucket{le="0.005",method="GET"' in scraped


async def test_scraping_needs_the_api_token(api) -> None:
    assert (await api.get("/metrics")).status_code == 401
