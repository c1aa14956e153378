"""The HTTP API: ``python -m starter.api`` (docs/contract.md), or ``create_app`` in tests."""

from starter.api.app import create_app

__all__ = ["create_app"]
