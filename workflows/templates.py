"""Templates complete declarations: a common kind of incident, declared in a few words.

Pure and shared by every entry point (the API, the CLI through it, Slack, the desk), so a
request is completed and checked the same way everywhere, before any incident number is
spent: what the request says wins, the template fills what it leaves out, and what is still
missing or unknown is refused naming the field.
"""

from __future__ import annotations

from typing import Any

from workflows.models import Declaration, DeclarationRequest
from workflows.policy import Policy


class InvalidDeclaration(ValueError):
    """A declaration that cannot be made; ``loc`` names the field (``("public", "components")``)."""

    def __init__(self, loc: tuple[str, ...], message: str, kind: str = "value_error") -> None:
        super().__init__(f"{'.'.join(loc)}: {message}")
        self.loc, self.message, self.kind = loc, message, kind


def template_fields(request: DeclarationRequest, policy: Policy) -> dict[str, Any]:
    """What the named template adds: the fields the request left out (or sent as null) that
    the template has."""
    if not request.template:
        return {}
    template = policy.templates.get(request.template)
    if template is None:
        known = ", ".join(policy.templates) or "none"
        message = f"unknown template {request.template!r}; known: {known}"
        raise InvalidDeclaration(("template",), message)
    given = {f for f in request.model_fields_set if getattr(request, f) is not None}
    filled = {
        field: getattr(template, field)
        for field in type(template).model_fields
        if field not in given and getattr(template, field) not in (None, [], "")
    }
    if request.drill:
        filled.pop("public", None)  # a drill never goes on the status page, whatever its kind
    return filled


def complete(request: DeclarationRequest, policy: Policy) -> Declaration:
    """The declaration the workflow starts from; ``InvalidDeclaration`` says what is wrong."""
    fields = {**request.model_dump(exclude_unset=True), **template_fields(request, policy)}
    for required in ("title", "severity"):
        if fields.get(required) is None:
            raise InvalidDeclaration(
                (required,),
                f"Field required: give a {required} or a template that has one",
                "missing",
            )
    try:
        policy.severity(fields["severity"])
    except ValueError as error:
        raise InvalidDeclaration(("severity",), str(error)) from None
    declaration = Declaration.model_validate(fields)
    public = declaration.public
    if public is not None and declaration.drill:
        raise InvalidDeclaration(("public",), "a drill never goes on the status page")
    unknown = sorted(set(public.components or []) - set(policy.components)) if public else []
    if policy.components and unknown:
        known = ", ".join(sorted(policy.components))
        message = f"unknown components {', '.join(unknown)} (known: {known})"
        raise InvalidDeclaration(("public", "components"), message)
    return declaration
