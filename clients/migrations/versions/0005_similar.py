"""Similar incidents: full-text search over the archive's titles and components, and the
private flag, so a private incident is never listed as similar to another.

SQLite: an FTS5 table, ``incident_words``, whose rowid is the incident's number; the archive
writes it with each upsert (``clients/archive.py``), not a trigger, since Alembic's batch mode
recreates ``incidents`` on SQLite and would drop a trigger unseen. PostgreSQL: a generated
``tsvector`` column with a GIN index. Each engine stems and drops stop words its own way
(porter for SQLite, the ``english`` configuration for PostgreSQL).

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WORDS = "to_tsvector('english', title || ' ' || coalesce(record ->> 'components', ''))"


def upgrade() -> None:
    op.add_column(
        "incidents",
        sa.Column("private", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"ALTER TABLE incidents ADD COLUMN words tsvector GENERATED ALWAYS AS ({WORDS}) STORED"
        )
        op.create_index("incidents_words", "incidents", ["words"], postgresql_using="gin")
        return
    op.execute(
        "CREATE VIRTUAL TABLE incident_words USING "
        "fts5(title, components, tokenize = 'porter unicode61 remove_diacritics 2')"
    )
    op.execute(
        "INSERT INTO incident_words (rowid, title, components) SELECT number, title, "
        "coalesce(json_extract(record, '$.components'), '') FROM incidents"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("incidents_words", "incidents")
        op.drop_column("incidents", "words")
    else:
        op.execute("DROP TABLE incident_words")
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("private")
