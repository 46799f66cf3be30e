"""init: audit_logs and system_config, with the updated_at trigger.

Chain: admin
Revision: 20260101000000
Revises:
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "20260101000000"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "audit_logs",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("resource_type", sa.Text(), nullable=True),
        sa.Column("resource_id", sa.Text(), nullable=True),
        sa.Column("details", postgresql.JSONB(), nullable=True),
        sa.Column("ip_address", sa.Text(), nullable=True),
        sa.Column("user_agent", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name="audit_logs_pkey"),
    )
    op.create_index("audit_logs_user_id_idx", "audit_logs", ["user_id"])
    op.create_index("audit_logs_created_at_idx", "audit_logs", ["created_at"])
    op.create_index("audit_logs_action_idx", "audit_logs", ["action"])
    op.create_table(
        "system_config",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("value", postgresql.JSONB(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("key", name="system_config_pkey"),
    )
    op.execute(
        "CREATE FUNCTION admin_set_updated_at() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$"
    )
    op.execute(
        "CREATE TRIGGER system_config_set_updated_at BEFORE UPDATE ON system_config "
        "FOR EACH ROW EXECUTE FUNCTION admin_set_updated_at()"
    )


def downgrade() -> None:
    op.drop_table("system_config")
    op.drop_table("audit_logs")
    op.execute("DROP FUNCTION admin_set_updated_at()")
