"""The HTTP API: ``python -m starter.api`` (docs/contract.md), or ``starter.api.app.create_app``
in tests. Nothing is imported here, so importing one of its modules never builds the app."""
