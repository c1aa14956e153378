"""Alembic environment: runs on the connection the archive hands over (see archive.migrate)."""

from alembic import context

from clients.archive import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
