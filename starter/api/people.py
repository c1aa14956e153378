"""People in request bodies: named as ids, mentions, @handles or emails, resolved to ids.

A route class, so the body is turned into ids *before* FastAPI validates it into the command
model: the OpenAPI document keeps the command models as the request bodies, and the command
that reaches the desk already holds ids only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response, status
from fastapi.exceptions import HTTPException
from fastapi.routing import APIRoute
from pydantic import BaseModel

from clients.slack_people import SlackPeople, UnknownPerson
from starter.api.auth import authorized
from starter.api.strict import strictly
from starter.people import resolve_fields


def _body_model(route: APIRoute) -> type[BaseModel] | None:
    field = route.body_field
    model = field.field_info.annotation if field is not None else None
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


class PeopleRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def resolving(request: Request) -> Response:
            model = _body_model(self)
            # Without a good token the route answers 401 whatever the body says, so nobody
            # is looked up in Slack for an unauthenticated request.
            if model is None or not authorized(request):
                return await handle(request)
            raw = await request.body()
            try:
                data = json.loads(raw) if raw else None
            except ValueError:
                data = None  # FastAPI answers malformed JSON with its own 422
            if isinstance(data, dict):
                people: SlackPeople = request.app.state.people
                try:
                    resolved = await resolve_fields(people, model, data)
                except UnknownPerson as error:
                    detail = [
                        {
                            "loc": ["body", error.field or "user"],
                            "msg": str(error),
                            "type": "value_error",
                            "input": error.given,
                        }
                    ]
                    raise HTTPException(
                        status.HTTP_422_UNPROCESSABLE_CONTENT, detail=detail
                    ) from None
                # Starlette keeps the body it read here; FastAPI validates this one.
                request._body = json.dumps(resolved).encode()
                strictly(model, resolved)
            return await handle(request)

        return resolving
