"""Bearer-token auth, for every route but /healthz, the status page, /slack/events (Slack signs
it) and /alerts (a source may prove itself with its own token or signature instead)."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from config import Settings
from starter.api.dependencies import AppSettings

# auto_error=False: HTTPBearer's own error is a 403 without a challenge; the contract wants 401
# with WWW-Authenticate, raised below. The scheme still documents the auth in OpenAPI.
UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid bearer token."}
}
bearer = HTTPBearer(auto_error=False, description="A token from INCIDENT_API_TOKENS.")


def _challenge(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


def known_token(given: str, tokens: frozenset[str]) -> bool:
    """Compare against every token in constant time, so timing says nothing about which matched."""
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(given.encode(), token.encode())
    return matched


def authorized(request: Request) -> bool:
    """What ``require_token`` decides, for code that runs before the route's dependencies."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    settings: Settings = request.app.state.settings
    return scheme.lower() == "bearer" and known_token(given.strip(), settings.bearer_tokens)


async def require_token(
    settings: AppSettings,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    if credentials is None:
        raise _challenge("missing bearer token: send Authorization: Bearer <token>")
    if not known_token(credentials.credentials, settings.bearer_tokens):
        raise _challenge("invalid bearer token")
