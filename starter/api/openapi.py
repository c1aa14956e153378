"""The OpenAPI document, made exact: what a client generated from it sends is what the API takes.

FastAPI derives the document from the models, but some rules live elsewhere: the severities,
templates and components of the loaded policy, people given as Slack ids, text that must hold
something visible, the statuses every route may answer (401 without a token, 403 without its
scope, 400 for a body that is not UTF-8). They are written into the document here, once, from
the same definitions the API validates with; the 405 answer names every method of its path in
``Allow``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, get_args

from fastapi import FastAPI, Request, Response, status
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from starter.api.errors import http_refused
from starter.command_table import BY_MODEL
from starter.command_words import person_fields
from starter.status.subscribing import Subscription
from workflows.models import DeclarationRequest
from workflows.policy import Policy
from workflows.text import USER_ID, clean_line, clean_required_text

Schema = dict[str, Any]
# A Slack user id, bare or as a mention: what the API takes without asking Slack. Handles and
# emails are resolved too (a convenience the description tells), but no schema can know who
# is in the workspace, so the document promises ids.
PERSON = rf"^({USER_ID}|<@{USER_ID}(\|[^>]{{0,80}})?>)$"
# Something visible: not a space, a control or an invisible format character.
VISIBLE = (
    "[^\\s\\x00-\\x1f\\x7f-\\x9f\\u00ad\\u061c\\u180e\\u200b-\\u200f\\u202a-\\u202e"
    "\\u2060-\\u206f\\ufeff\\ufff9-\\ufffb]"
)
BODY_UNREADABLE = {"description": "The body could not be read (not UTF-8, or not a form)."}
UNAUTHORIZED = {"description": "Missing or invalid bearer token."}
FORBIDDEN = {"description": "The token lacks the scope this needs, or acts for someone else."}


def install(app: FastAPI, policy: Policy) -> None:
    generate = app.openapi

    def exact_openapi() -> Schema:
        if app.openapi_schema is None:
            app.openapi_schema = exact(generate(), policy)
        return app.openapi_schema

    app.openapi = exact_openapi  # type: ignore[method-assign]
    app.add_exception_handler(StarletteHTTPException, every_method_allowed)


def exact(document: Schema, policy: Policy) -> Schema:
    schemas: dict[str, Schema] = document.setdefault("components", {}).setdefault("schemas", {})
    for holder in list(_walk(document)):
        for name, schema in holder.pop("$defs", {}).items():
            schemas.setdefault(name, schema)
    for path in document["paths"].values():
        for operation in path.values():
            for content in operation.get("requestBody", {}).get("content", {}).values():
                _named(content, schemas)
    _rewrite_refs(document)
    for node in _walk(document):
        pattern = node.get("pattern")
        if isinstance(pattern, str) and pattern.endswith("$") and not pattern.endswith("\\$"):
            # Python's "$" (the fuzzers') also matches before a last newline; the validators'
            # (and JSON Schema's) does not: say so in both tongues.
            node["pattern"] = pattern[:-1] + "(?!\n)$"
    for model in _nested([*BY_MODEL, DeclarationRequest]):
        for name in (model.__name__, f"{model.__name__}-Input"):
            if name in schemas:
                _fields(model, schemas[name], policy)
                if model is DeclarationRequest:
                    _declaration(schemas[name], policy)
    for path in document["paths"].values():
        for operation in path.values():
            _operation(operation, policy)
    _subscribe_form(document)
    return document


def _subscribe_form(document: Schema) -> None:
    """The status page's form answers a missing or bad address with the form again (422, for
    people), so it may read any text; clients are promised what ``Subscription`` takes."""
    form = document["paths"]["/status/subscribe"]["post"]["requestBody"]["content"]
    ref = form["application/x-www-form-urlencoded"]["schema"]["$ref"]
    schema = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    email = Subscription.model_json_schema()["properties"]["email"]["anyOf"][0]
    schema["properties"]["email"] = {**schema["properties"]["email"], **email}
    schema["properties"]["email"].pop("default", None)
    schema["required"] = sorted({*schema.get("required", []), "email"})
    # A form sends one component as one value, several as repeated fields: both are read.
    component = Subscription.model_json_schema()["properties"]["components"]
    one = {"type": "string", "maxLength": component["items"]["maxLength"]}
    schema["properties"]["components"] = {"anyOf": [component, one]}


def _named(content: Schema, schemas: dict[str, Schema]) -> None:
    """A body documented inline from a model (the alerts') becomes a component, like others."""
    schema = content.get("schema", {})
    title = schema.get("title")
    if "properties" in schema and isinstance(title, str) and title not in schemas:
        schemas[title] = schema
        content["schema"] = {"$ref": f"#/components/schemas/{title}"}


def _nested(models: list[type[BaseModel]]) -> set[type[BaseModel]]:
    """These models and every model their fields hold (a declaration's ``public``)."""
    found: set[type[BaseModel]] = set()
    waiting = list(models)
    while waiting:
        model = waiting.pop()
        if model in found:
            continue
        found.add(model)
        for field in model.model_fields.values():
            waiting.extend(_models_in(field.annotation))
    return found


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for inner in get_args(annotation) for m in _models_in(inner)]


def _fields(model: type[BaseModel], schema: Schema, policy: Policy) -> None:
    properties: dict[str, Schema] = schema.get("properties", {})
    people = set(person_fields(model))
    for name, field in model.model_fields.items():
        if name not in properties:
            continue
        checks = _checks(field.annotation) | {getattr(m, "func", None) for m in field.metadata}
        if name in people:
            _strings(properties[name], {"pattern": PERSON})
        elif checks & {clean_line, clean_required_text}:
            _strings(properties[name], {"pattern": VISIBLE})
        elif name == "severity":
            _strings(properties[name], {"enum": list(policy.severities)})
        elif name == "template":
            _strings(properties[name], {"enum": list(policy.templates)})
        elif name == "type":
            _strings(properties[name], {"enum": list(policy.types)})
        elif name == "components" and policy.components:
            _strings(properties[name], {"enum": list(policy.components)})


def _checks(annotation: Any) -> set[Any]:
    """The validators inside a type, items of a list or members of a union included."""
    found = {getattr(m, "func", None) for m in getattr(annotation, "__metadata__", ())}
    for inner in get_args(annotation):
        found |= _checks(inner)
    return found


def _declaration(schema: Schema, policy: Policy) -> None:
    """``title`` and ``severity`` are required unless the template (else the type's) gives them."""
    given = {"title": {"type": "string"}, "severity": {"type": "string"}}
    ways: list[Schema] = [{"required": ["title", "severity"], "properties": given}]
    for name, template in policy.templates.items():
        missing = [f for f in ("title", "severity") if getattr(template, f) is None]
        ways.append(
            {
                "required": ["template", *missing],
                "properties": {"template": {"const": name}, **{f: given[f] for f in missing}},
            }
        )
    for name, kind in policy.types.items():
        own = policy.templates.get(kind.template or "")
        if own is None:
            continue  # a type without a template: title and severity are the request's
        missing = [f for f in ("title", "severity") if getattr(own, f) is None]
        properties = {"type": {"const": name}, "template": {"type": "null"}}
        ways.append(
            {
                "required": ["type", *missing],
                "properties": {**properties, **{f: given[f] for f in missing}},
            }
        )
    schema["anyOf"] = ways
    # A drill never goes on the status page.
    drill_in_public = {"const": True}
    schema["not"] = {
        "required": ["drill", "public"],
        "properties": {"drill": drill_in_public, "public": {"type": "object"}},
    }
    if refusals := list(_type_severities(policy)):
        schema["allOf"] = refusals


def _type_severities(policy: Policy) -> Iterator[Schema]:
    """A type allows only its severities: the one given, else the named template's (a type's
    own template is checked when the policy loads)."""
    for name, kind in policy.types.items():
        if kind.severities is None:
            continue
        kept = {"type": {"const": name}}
        given = {"type": "string", "not": {"enum": kind.severities}}
        yield {"not": {"required": ["type", "severity"], "properties": {**kept, "severity": given}}}
        templates = policy.templates.items()
        others = [t for t, o in templates if o.severity and not kind.allows(o.severity)]
        if others:
            by_template = {**kept, "template": {"enum": others}, "severity": {"type": "null"}}
            yield {"not": {"required": ["type", "template"], "properties": by_template}}


def _strings(schema: Schema, rule: Schema) -> None:
    """The rule on every string the schema may hold: itself, an array's items, an anyOf's."""
    if schema.get("type") == "string":
        schema.update(rule)
    if "items" in schema:
        _strings(schema["items"], rule)
    for option in schema.get("anyOf", []):
        _strings(option, rule)


def _operation(operation: Schema, policy: Policy) -> None:
    responses: Schema = operation["responses"]
    if operation.get("security"):
        responses.setdefault("401", UNAUTHORIZED)
        responses.setdefault("403", FORBIDDEN)
    if "requestBody" in operation:
        responses.setdefault("400", BODY_UNREADABLE)
    for parameter in operation.get("parameters", []):
        name, schema = parameter["name"], parameter["schema"]
        if name == "severity":
            _strings(schema, {"enum": list(policy.severities)})
        elif name == "type":
            _strings(schema, {"enum": list(policy.types)})


def _walk(node: Any) -> Iterator[Schema]:
    if isinstance(node, dict):
        yield node
        for value in list(node.values()):
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _rewrite_refs(document: Schema) -> None:
    for node in _walk(document):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            node["$ref"] = "#/components/schemas/" + ref.removeprefix("#/$defs/")


async def every_method_allowed(request: Request, error: Exception) -> Response:
    """FastAPI's own answer (a 403 audited first: ``errors.http_refused``), but a 405 names
    every method of its path in ``Allow`` (Starlette names those of the first route on the path
    only, and a path may have several)."""
    assert isinstance(error, StarletteHTTPException)
    answer = await http_refused(request, error)
    if error.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
        allowed: set[str] = set()
        for route in request.app.router.routes:
            match, _ = route.matches({**request.scope, "method": "GET"})
            if match is not Match.NONE:
                allowed |= getattr(route, "methods", None) or set()
        answer.headers["Allow"] = ", ".join(sorted(allowed))
    return answer
