"""owed_events: the broadcasts a committed effect still owes the screens, written in the
effect's own transaction and deleted once published (docs/protocol.md section 4, "what
was promised is delivered").

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "owed_events",
        sa.Column("owner", sa.String(length=300), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("after_seq", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("claimed_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_owed_events_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("owner", "ordinal", name=op.f("pk_owed_events")),
    )
    op.create_index("ix_owed_events_claimed_at", "owed_events", ["claimed_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_owed_events_claimed_at", table_name="owed_events")
    op.drop_table("owed_events")
