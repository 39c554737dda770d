"""join_tokens keeps only the SHA-256 of each join code (docs/protocol.md section 7, v1.2):
the column ``jti`` (the code) becomes ``code_hash``, and every stored code is replaced by
its hash, so a code issued before the upgrade still joins after it.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _hash(code: str) -> str:
    # The rule of companion_ws.store.repositories.code_hash, frozen here as a migration
    # must be: SHA-256 of the code's UTF-8 bytes, in hex.
    return hashlib.sha256(code.encode()).hexdigest()


def upgrade() -> None:
    bind = op.get_bind()
    codes = bind.execute(sa.text("SELECT jti FROM join_tokens")).scalars().all()
    for code in codes:
        bind.execute(
            sa.text("UPDATE join_tokens SET jti = :hashed WHERE jti = :code"),
            {"hashed": _hash(code), "code": code},
        )
    with op.batch_alter_table("join_tokens") as batch:
        batch.alter_column("jti", new_column_name="code_hash", existing_type=sa.String(64))


def downgrade() -> None:
    # A hash cannot be turned back into its code: the codes issued since the upgrade
    # stop working (they live minutes); the column gets its old name back.
    with op.batch_alter_table("join_tokens") as batch:
        batch.alter_column("code_hash", new_column_name="jti", existing_type=sa.String(64))
