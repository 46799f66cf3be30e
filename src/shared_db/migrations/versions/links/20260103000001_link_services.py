"""link_services: cross-service foreign keys and the payment_reports view (guide 2.3, 7.1).

Applied only in the shared topology, after every service chain: these objects join tables that
the per-service topology keeps in separate databases.

Chain: links
Revision: 20260103000001
Revises:
"""

from collections.abc import Sequence

from alembic import op

revision: str = "20260103000001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
lint_acknowledged = {
    "constraint-not-valid": "part of every database's first deploy, right after the tables it "
                            "links are created and before any service writes to them, so the "
                            "validation scan reads empty tables",
}

PAYMENT_REPORTS = """
CREATE VIEW payment_reports AS
SELECT
  u.id as user_id,
  u.email,
  u.role,
  COUNT(p.id) as total_payments,
  SUM(p.amount) as total_amount,
  AVG(p.amount) as avg_amount
FROM users u
LEFT JOIN payments p ON u.id = p.user_id
GROUP BY u.id, u.email, u.role
"""


def upgrade() -> None:
    # Money records never vanish with a user: RESTRICT, Prisma's default for a required relation.
    op.create_foreign_key("payments_user_id_fkey", "payments", "users", ["user_id"], ["id"],
                          ondelete="RESTRICT", onupdate="CASCADE")
    op.create_foreign_key("user_profiles_user_id_fkey", "user_profiles", "users", ["user_id"],
                          ["id"], ondelete="CASCADE", onupdate="CASCADE")
    op.execute(PAYMENT_REPORTS)


def downgrade() -> None:
    op.execute("DROP VIEW payment_reports")
    op.drop_constraint("user_profiles_user_id_fkey", "user_profiles", type_="foreignkey")
    op.drop_constraint("payments_user_id_fkey", "payments", type_="foreignkey")
