"""add_payments: payments and payment_transactions, their enums and indexes (guide 2.3, 5.1).

The foreign key from payments to users lives in the links chain: in the per-service topology
users is in another database.

Chain: payments
Revision: 20260102000000
Revises:
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "20260102000000"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NOW = sa.text("now()")
_UUID = sa.text("gen_random_uuid()")
payment_status = postgresql.ENUM("pending", "initiated", "processing", "completed", "failed",
                                 "cancelled", name="PaymentStatus", create_type=False)
payment_type = postgresql.ENUM("initiate", "payment", name="PaymentType", create_type=False)


def upgrade() -> None:
    payment_status.create(op.get_bind())
    payment_type.create(op.get_bind())
    op.create_table(
        "payments",
        sa.Column("id", sa.Uuid(), server_default=_UUID, nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.Numeric(10, 2), nullable=False),
        sa.Column("currency", sa.Text(), server_default=sa.text("'USD'"), nullable=False),
        sa.Column("status", payment_status, nullable=False),
        sa.Column("type", payment_type, nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("metadata", postgresql.JSONB(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name="payments_pkey"),
    )
    op.create_index("payments_user_id_idx", "payments", ["user_id"])
    op.create_index("payments_status_idx", "payments", ["status"])
    op.create_index("payments_created_at_idx", "payments", ["created_at"])
    op.create_index("payments_user_id_status_idx", "payments", ["user_id", "status"])
    op.create_table(
        "payment_transactions",
        sa.Column("id", sa.Uuid(), server_default=_UUID, nullable=False),
        sa.Column("payment_id", sa.Uuid(), nullable=False),
        sa.Column("transaction_type", sa.Text(), nullable=False),
        sa.Column("amount", sa.Numeric(10, 2), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("metadata", postgresql.JSONB(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"],
                                name="payment_transactions_payment_id_fkey",
                                ondelete="CASCADE", onupdate="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="payment_transactions_pkey"),
    )
    op.create_index("payment_transactions_payment_id_idx", "payment_transactions", ["payment_id"])
    op.execute(
        "CREATE FUNCTION payments_set_updated_at() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$"
    )
    op.execute(
        "CREATE TRIGGER payments_set_updated_at BEFORE UPDATE ON payments "
        "FOR EACH ROW EXECUTE FUNCTION payments_set_updated_at()"
    )


def downgrade() -> None:
    op.drop_table("payment_transactions")
    op.drop_table("payments")
    op.execute("DROP FUNCTION payments_set_updated_at()")
    payment_type.drop(op.get_bind())
    payment_status.drop(op.get_bind())
