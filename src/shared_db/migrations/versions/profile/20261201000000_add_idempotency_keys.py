"""add_idempotency_keys: profile_idempotency_keys, for calls made exactly once with a key.

Chain: profile
Revision: 20261201000000
Revises: 20260101000000
"""

from collections.abc import Sequence

from shared_db.migrations.keys import create_key_table, drop_key_table

revision: str = "20261201000000"
down_revision: str | None = "20260101000000"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_key_table("profile")


def downgrade() -> None:
    drop_key_table("profile")
