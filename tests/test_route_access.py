"""The security suite: every route of the live OpenAPI document, called by every kind of caller
(no token, an expired one, a revoked one, a person's read-only, a person's read-write, a
service token, a person's admin token), answers as the route's kind says: 401 to a caller with
no valid token, 403 to one lacking the scope, and neither where the caller is allowed.

The routes come from ``/openapi.json`` itself: a route that takes the bearer token is a
reading or a writing one by its method unless listed below, and one that does not must be
listed as public or as checking a signature of its own, so a new route is either checked or
fails here. Bodies are the schema's required fields with the smallest values that pass it, so
an allowed caller reaches the route (its answer may still be 404, 409 or 422). Real parts: the
session's worker, dev server and archive, the API over ASGI.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

import httpx
import pytest

from config import Settings
from starter.api.app import create_app
from starter.desk import IncidentDesk

SERVICE = "test-token-route-access"
AS_SERVICE = {"Authorization": f"Bearer {SERVICE}"}
PERSON = "U024BE7LH"  # whom bodies name: the emulator's Olivia
CALLERS = ("nobody", "expired", "revoked", "reader", "writer", "service", "admin")
UNVERIFIED = ("nobody", "expired", "revoked")


class Access(Enum):
    READ = "a verified caller with read"
    WRITE = "a verified caller with write"
    ADMIN = "a service token or a person's admin token"
    SERVICE = "a service token only (or the sender's own credentials)"
    PUBLIC = "anyone: no token needed"
    SIGNED = "its own signature: a bearer token changes nothing"


# Routes whose access is not what their method says; each entry is a route of the document.
ADMIN = {("GET", "/tokens"), ("POST", "/tokens"), ("GET", "/audit")}
SERVICE_ONLY = {  # alert senders and calendar apps: a service token or their own credentials
    ("POST", "/alerts/alertmanager"),
    ("POST", "/alerts/generic"),
    ("GET", "/schedules/{name}.ics"),
    ("GET", "/people/{user}/oncall.ics"),
}
SIGNED = {("POST", "/slack/events"), ("POST", "/integrations/pagerduty")}
PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/status"),
    ("GET", "/status.json"),
    ("GET", "/status/feed.atom"),
    ("POST", "/status/subscribers"),
    ("POST", "/status/subscribe"),
    ("GET", "/status/subscribers/confirm"),
    ("POST", "/status/subscribers/confirm"),
    ("GET", "/status/subscribers/unsubscribe"),
    ("POST", "/status/subscribers/unsubscribe"),
}


def allowed(access: Access, caller: str) -> bool | None:
    """Whether ``caller`` may use a route of this access; None: the test asks something else."""
    if access in (Access.PUBLIC, Access.SIGNED):
        return None
    if caller in UNVERIFIED:
        return False
    return {
        Access.READ: True,
        Access.WRITE: caller != "reader",
        Access.ADMIN: caller in ("service", "admin"),
        Access.SERVICE: caller == "service",
    }[access]


def refusal(access: Access, caller: str) -> int:
    """The status a refused caller gets: 401 without a valid token (a personal token is none
    where only service tokens count), 403 when the token lacks the scope."""
    if caller in UNVERIFIED or access is Access.SERVICE:
        return 401
    return 403


def access_of(method: str, path: str, operation: dict[str, Any]) -> Access:
    route = (method, path)
    listed = [
        access
        for access, routes in (
            (Access.ADMIN, ADMIN),
            (Access.SERVICE, SERVICE_ONLY),
            (Access.SIGNED, SIGNED),
            (Access.PUBLIC, PUBLIC),
        )
        if route in routes
    ]
    assert len(listed) <= 1, f"{method} {path} is listed as {listed}"
    if listed:
        return listed[0]
    assert operation.get("security"), (
        f"{method} {path} takes no bearer token and has no expectation here: list it as "
        "PUBLIC or SIGNED (or give it the bearer token)"
    )
    return Access.READ if method == "GET" else Access.WRITE


# -- requests from the schema --------------------------------------------------------------------

# Values for the schema's patterns that no plain value matches, by a piece of the pattern.
PATTERN_VALUES = {
    "[UW][A-Z0-9]": PERSON,  # a Slack user id
    "(19|20)": "2026-12-08T09:00Z",  # a time, as the on-call routes write them
    "@[A-Za-z0-9": "audit@example.com",  # an email address
    "p1\\.": "p1.AAAA",  # a page token
}
PATH_VALUES = {"item_id": "1", "name": "payments", "user": PERSON, "token_id": "tok_0000"}


@dataclass
class Document:
    schemas: dict[str, Any]

    def resolved(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self.schemas[schema["$ref"].rsplit("/", 1)[-1]]
        return schema

    def smallest(self, schema: dict[str, Any], name: str) -> Any:
        """The smallest value the schema takes: its const, first enum or example, or one made."""
        schema = self.resolved(schema)
        options = schema.get("anyOf") or schema.get("oneOf") or []
        first = next((self.resolved(s) for s in options if s.get("type") != "null"), {})
        if "properties" in schema:  # an object that also needs one of these: the first's fields
            needed = [*schema.get("required", []), *first.get("required", [])]
            return {k: self.smallest(schema["properties"][k], k) for k in dict.fromkeys(needed)}
        if first:
            return self.smallest(first, name)
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return schema["enum"][0]
        kind = schema.get("type")
        if kind == "object":
            required = schema.get("required", [])
            return {k: self.smallest(schema["properties"][k], k) for k in required}
        if kind == "array":
            return [self.smallest(schema["items"], name)] * max(schema.get("minItems", 0), 1)
        if kind == "boolean":
            return False
        if kind in ("integer", "number"):
            return schema.get("minimum", 1)
        assert kind == "string", f"{name}: no value made for {schema}"
        if schema.get("format") == "date-time":
            return (datetime.now(UTC) + timedelta(days=1)).isoformat()
        pattern = schema.get("pattern", "")
        value = next((v for piece, v in PATTERN_VALUES.items() if piece in pattern), "x")
        assert re.search(pattern, value), f"{name}: add a value for the pattern {pattern!r}"
        return value


@dataclass
class Call:
    method: str
    path: str  # as the document has it
    url: str
    access: Access
    documented: set[str]
    json: Any = None
    form: dict[str, Any] | None = None
    params: dict[str, Any] | None = None


def calls(document: dict[str, Any], incident: str) -> list[Call]:
    schemas = Document(document["components"]["schemas"])
    made: list[Call] = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            method = method.upper()
            url, params = path, {}
            for parameter in operation.get("parameters", []):
                name, where = parameter["name"], parameter["in"]
                if where == "path":
                    value = incident if name == "incident_id" else PATH_VALUES.get(name)
                    if value is None:
                        value = schemas.smallest(parameter["schema"], name)
                    url = url.replace("{" + name + "}", str(value))
                elif where == "query" and parameter.get("required"):
                    params[name] = schemas.smallest(parameter["schema"], name)
            call = Call(
                method,
                path,
                url,
                access_of(method, path, operation),
                set(operation["responses"]),
                params=params or None,
            )
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                call.json = schemas.smallest(content["application/json"]["schema"], path)
            elif "application/x-www-form-urlencoded" in content:
                schema = content["application/x-www-form-urlencoded"]["schema"]
                call.form = schemas.smallest(schema, path)
            made.append(call)
    return made


# -- the callers ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def api(settings: Settings, desk: IncidentDesk) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update={"api_tokens": SERVICE}), desk=desk)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # a 500 is an answer
    async with httpx.AsyncClient(transport=transport, base_url="http://api", timeout=60) as http:
        yield http


async def personal(api: httpx.AsyncClient, scopes: list[str], expires_in: int = 3600) -> str:
    body = {"user": PERSON, "scopes": scopes, "expires_in": expires_in}
    made = await api.post("/tokens", json=body, headers=AS_SERVICE)
    assert made.status_code == 201, made.text
    token: str = made.json()["token"]
    return token


async def callers(api: httpx.AsyncClient) -> dict[str, dict[str, str]]:
    expired = await personal(api, ["read", "write"], expires_in=1)
    revoked = await api.post("/tokens", json={"user": PERSON}, headers=AS_SERVICE)
    gone = await api.delete(f"/tokens/{revoked.json()['id']}", headers=AS_SERVICE)
    assert gone.status_code == 200
    tokens = {
        "expired": expired,
        "revoked": revoked.json()["token"],
        "reader": await personal(api, ["read"]),
        "writer": await personal(api, ["read", "write"]),
        "service": SERVICE,
        "admin": await personal(api, ["admin"]),
    }
    await asyncio.sleep(1.1)  # the expired one has
    return {"nobody": {}} | {k: {"Authorization": f"Bearer {t}"} for k, t in tokens.items()}


async def test_every_route_answers_every_kind_of_caller_as_its_access_says(api):
    started = time.monotonic()
    body = {"title": "Route access", "severity": "sev3", "by": PERSON}
    declared = await api.post("/incidents", json=body, headers=AS_SERVICE)
    assert declared.status_code == 202, declared.text
    document = (await api.get("/openapi.json")).json()
    every = calls(document, declared.json()["id"])
    assert len(every) > 50, "the whole API"
    stale = (ADMIN | SERVICE_ONLY | SIGNED | PUBLIC) - {(c.method, c.path) for c in every}
    assert not stale, f"listed here, but no route of the document: {sorted(stale)}"
    headers = await callers(api)
    # Routes in parallel, within what one incident takes at once (ten Updates in flight); the
    # callers of one route one after another, as the same change from two people would race.
    room = asyncio.Semaphore(6)

    async def answer(call: Call) -> list[tuple[Call, str, httpx.Response]]:
        answered = []
        async with room:
            for caller in CALLERS:
                response = await api.request(
                    call.method,
                    call.url,
                    json=call.json,
                    data=call.form,
                    params=call.params,
                    headers=headers[caller],
                )
                answered.append((call, caller, response))
        return answered

    answers = [a for route in await asyncio.gather(*map(answer, every)) for a in route]
    wrong: list[str] = []
    by_route: dict[tuple[str, str], dict[str, int]] = {}
    for call, caller, response in answers:
        code = response.status_code
        by_route.setdefault((call.method, call.path), {})[caller] = code
        expected = allowed(call.access, caller)
        said = f"{call.method} {call.url} as {caller}: {code} {response.text[:200]}"
        if code == 500:  # 503 is for later (a subscription with no mail server here)
            wrong.append(f"{said} (a server error)")
        elif expected is True and code in (401, 403):
            wrong.append(f"{said} (allowed: {call.access.value})")
        elif expected is False and code != refusal(call.access, caller):
            wrong.append(f"{said} (expected {refusal(call.access, caller)}: {call.access.value})")
        elif call.access is Access.PUBLIC and code in (401, 403):
            wrong.append(f"{said} (public)")
        if code in (401, 403) and str(code) not in call.documented:
            wrong.append(f"{said} (the OpenAPI document does not list {code})")
    for call in every:
        if call.access is Access.SIGNED:
            codes = by_route[(call.method, call.path)]
            if len(set(codes.values())) != 1 or 200 in codes.values():
                wrong.append(f"{call.method} {call.path}: a bearer token changed it: {codes}")
    assert not wrong, "\n".join(wrong)
    took = time.monotonic() - started
    print(f"{len(answers)} requests, {len(every)} routes x {len(CALLERS)} callers, {took:.1f} s")


def test_a_route_of_no_kind_fails_here():
    """The guard itself: a route without the bearer token that no list names has no access."""
    with pytest.raises(AssertionError, match="has no expectation here"):
        access_of("POST", "/made/up", {"responses": {}})
    assert access_of("DELETE", "/made/up", {"security": [{"HTTPBearer": []}]}) is Access.WRITE
