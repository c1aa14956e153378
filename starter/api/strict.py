"""Bodies read as their JSON schema says, with no guessing.

FastAPI validates the parsed JSON as Python data, which takes ``false`` for the number 0 and
``0`` for a time in 1970; the OpenAPI document promises neither. Reading the body strictly as
JSON first refuses those with the same 422 FastAPI gives for anything else.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def integral(data: Any) -> Any:
    """``2.0`` as ``2``: JSON Schema counts it an integer, strict validation would not."""
    if isinstance(data, float) and data.is_integer():
        return int(data)
    if isinstance(data, dict):
        return {key: integral(value) for key, value in data.items()}
    if isinstance(data, list):
        return [integral(value) for value in data]
    return data


def strictly(model: type[M], data: Any) -> M:
    """The model from parsed JSON data; ``RequestValidationError`` (422) naming the fields."""
    try:
        return model.model_validate_json(json.dumps(integral(data)), strict=True)
    except ValidationError as error:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in error.errors(include_url=False)]
        ) from None
