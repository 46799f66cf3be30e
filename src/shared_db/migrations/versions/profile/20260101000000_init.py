"""init: user_profiles, with the updated_at trigger.

The foreign key to users lives in the links chain: in the per-service topology users is in
another database.

Chain: profile
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
        "user_profiles",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("avatar_url", sa.Text(), nullable=True),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("bio", sa.Text(), nullable=True),
        sa.Column("preferences", postgresql.JSONB(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name="user_profiles_pkey"),
        sa.UniqueConstraint("user_id", name="user_profiles_user_id_key"),
    )
    op.create_index("user_profiles_user_id_idx", "user_profiles", ["user_id"])
    op.execute(
        "CREATE FUNCTION profile_set_updated_at() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$"
    )
    op.execute(
        "CREATE TRIGGER user_profiles_set_updated_at BEFORE UPDATE ON user_profiles "
        "FOR EACH ROW EXECUTE FUNCTION profile_set_updated_at()"
    )


def downgrade() -> None:
    op.drop_table("user_profiles")
    op.execute("DROP FUNCTION profile_set_updated_at()")
