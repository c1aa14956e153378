"""The status page: public incidents, component maintenance, subscribers and deliveries.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "public_incidents",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("declared_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("incident", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_public_incidents_status", "public_incidents", ["status"])
    op.create_index("ix_public_incidents_declared_at", "public_incidents", ["declared_at"])
    op.create_table(
        "status_components",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("maintenance", sa.Boolean, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "status_subscribers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("address", sa.String(2000), nullable=False, unique=True),
        sa.Column("components", sa.JSON, nullable=False),
        sa.Column("token", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "status_deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("subscriber_id", sa.Integer, nullable=False),
        sa.Column("update_key", sa.String(100), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("subscriber_id", "update_key"),
    )
    op.create_index("ix_status_deliveries_subscriber_id", "status_deliveries", ["subscriber_id"])


def downgrade() -> None:
    op.drop_table("status_deliveries")
    op.drop_table("status_subscribers")
    op.drop_table("status_components")
    op.drop_table("public_incidents")
