"""The idempotency-key table every service chain creates in its own database.

Kept here, not in the models, so that what a migration creates never changes after it has
been applied: a later change to the table is a new migration.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql


def create_key_table(service: str) -> None:
    table = f"{service}_idempotency_keys"
    op.create_table(
        table,
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("operation", sa.Text(), nullable=False),
        sa.Column("request_hash", sa.Text(), nullable=False),
        sa.Column("result", postgresql.JSONB(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=f"{table}_pkey"),
    )
    op.create_index(f"{table}_expires_at_idx", table, ["expires_at"])


def drop_key_table(service: str) -> None:
    op.drop_table(f"{service}_idempotency_keys")
