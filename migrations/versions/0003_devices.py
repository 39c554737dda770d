"""devices and join-token roles (docs/protocol.md section 11)

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("joined_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_devices_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_devices")),
    )
    op.create_index(op.f("ix_devices_session_id"), "devices", ["session_id"], unique=False)
    with op.batch_alter_table("join_tokens") as batch:
        batch.add_column(
            sa.Column("role", sa.String(length=16), nullable=False, server_default="companion")
        )


def downgrade() -> None:
    with op.batch_alter_table("join_tokens") as batch:
        batch.drop_column("role")
    op.drop_index(op.f("ix_devices_session_id"), table_name="devices")
    op.drop_table("devices")
