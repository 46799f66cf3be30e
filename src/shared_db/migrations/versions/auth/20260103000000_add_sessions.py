"""add_sessions: devices and sessions (the guide's POC-3 session management).

Chain: auth
Revision: 20260103000000
Revises: 20260101000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20260103000000"
down_revision: str | None = "20260101000000"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NOW = sa.text("now()")
_UUID = sa.text("gen_random_uuid()")


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("id", sa.Uuid(), server_default=_UUID, nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.Text(), nullable=False),
        sa.Column("device_name", sa.Text(), nullable=True),
        sa.Column("device_type", sa.Text(), nullable=True),
        sa.Column("last_active_at", sa.DateTime(timezone=True), server_default=_NOW,
                  nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="devices_user_id_fkey",
                                ondelete="CASCADE", onupdate="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="devices_pkey"),
        sa.UniqueConstraint("device_id", name="devices_device_id_key"),
    )
    op.create_index("devices_user_id_idx", "devices", ["user_id"])
    op.create_index("devices_device_id_idx", "devices", ["device_id"])
    op.create_table(
        "sessions",
        sa.Column("id", sa.Uuid(), server_default=_UUID, nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.Uuid(), nullable=False),
        sa.Column("refresh_token_id", sa.Uuid(), nullable=True),
        sa.Column("ip_address", sa.Text(), nullable=True),
        sa.Column("user_agent", sa.Text(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="sessions_user_id_fkey",
                                ondelete="CASCADE", onupdate="CASCADE"),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], name="sessions_device_id_fkey",
                                ondelete="CASCADE", onupdate="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="sessions_pkey"),
    )
    op.create_index("sessions_user_id_idx", "sessions", ["user_id"])
    op.create_index("sessions_device_id_idx", "sessions", ["device_id"])
    op.create_index("sessions_expires_at_idx", "sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_table("sessions")
    op.drop_table("devices")
