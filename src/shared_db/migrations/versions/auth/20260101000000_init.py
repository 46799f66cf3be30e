"""init: users and refresh_tokens, the UserRole enum, and the updated_at trigger.

Chain: auth
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
_UUID = sa.text("gen_random_uuid()")
user_role = postgresql.ENUM("ADMIN", "CUSTOMER", "VENDOR", name="UserRole", create_type=False)


def upgrade() -> None:
    user_role.create(op.get_bind())
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), server_default=_UUID, nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("role", user_role, nullable=False),
        sa.Column("email_verified", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name="users_pkey"),
        sa.UniqueConstraint("email", name="users_email_key"),
    )
    op.create_index("users_email_idx", "users", ["email"])
    op.create_index("users_role_idx", "users", ["role"])
    op.create_index("users_deleted_at_idx", "users", ["deleted_at"])
    op.create_table(
        "refresh_tokens",
        sa.Column("id", sa.Uuid(), server_default=_UUID, nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="refresh_tokens_user_id_fkey",
                                ondelete="CASCADE", onupdate="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="refresh_tokens_pkey"),
        sa.UniqueConstraint("token", name="refresh_tokens_token_key"),
    )
    op.create_index("refresh_tokens_user_id_idx", "refresh_tokens", ["user_id"])
    op.create_index("refresh_tokens_token_idx", "refresh_tokens", ["token"])
    # updated_at is kept by the database too, so raw SQL updates cannot leave it stale.
    op.execute(
        "CREATE FUNCTION auth_set_updated_at() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$"
    )
    op.execute(
        "CREATE TRIGGER users_set_updated_at BEFORE UPDATE ON users "
        "FOR EACH ROW EXECUTE FUNCTION auth_set_updated_at()"
    )


def downgrade() -> None:
    op.drop_table("refresh_tokens")
    op.drop_table("users")
    op.execute("DROP FUNCTION auth_set_updated_at()")
    user_role.drop(op.get_bind())
