"""The ``payment_reports`` view (guide 7.1) as typed rows; its DDL lives in the links chain.

Per service there is no view (``users`` and ``payments`` are in different databases), so the
report is assembled to give exactly the view's rows: the payments database aggregates per user
with the same COUNT/SUM/AVG, and the auth database LEFT JOINs its users to those aggregates
(sent as arrays) and sorts, so every value and the email order come from the same functions
and collation the view would use.
"""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Numeric,
    Text,
    Uuid,
    bindparam,
    column,
    func,
    literal_column,
    select,
    table,
)

from shared_db import validation as check
from shared_db.auth.models import User
from shared_db.enums import UserRole, pg_enum
from shared_db.payments.models import Payment
from shared_db.records import PaymentReport
from shared_db.repository import Repository
from shared_db.sql import Query

payment_reports = table(
    "payment_reports",
    column("user_id", Uuid()), column("email", Text()), column("role", pg_enum(UserRole)),
    column("total_payments", BigInteger()), column("total_amount", Numeric()),
    column("avg_amount", Numeric()),
)
_ROWS = select(*payment_reports.c).order_by(payment_reports.c.email)
ALL = Query.build("reports.payment_reports", _ROWS)
BY_ROLE = Query.build("reports.payment_reports.role", _ROWS.where(
    payment_reports.c.role == bindparam("role")))

PER_USER = Query.build("reports.per_user", select(
    Payment.user_id, func.count(Payment.id), func.sum(Payment.amount),
    func.avg(Payment.amount)).group_by(Payment.user_id))
_totals = func.unnest(
    bindparam("user_ids", type_=ARRAY(Uuid)), bindparam("counts", type_=ARRAY(BigInteger)),
    bindparam("sums", type_=ARRAY(Numeric)), bindparam("avgs", type_=ARRAY(Numeric)),
).table_valued("user_id", "total_payments", "total_amount", "avg_amount").render_derived(
    name="totals")
_JOINED = select(User.id, User.email, User.role,
                 func.coalesce(_totals.c.total_payments, literal_column("0")),
                 _totals.c.total_amount, _totals.c.avg_amount).select_from(User.__table__.outerjoin(
                     _totals, _totals.c.user_id == User.id)).order_by(User.email)
JOINED = Query.build("reports.payment_reports.joined", _JOINED)
JOINED_BY_ROLE = Query.build("reports.payment_reports.joined.role", _JOINED.where(
    User.role == bindparam("role")))


class ReportRepository(Repository):
    service = "payments"

    async def payment_reports(self, role: UserRole | str | None = None) -> list[PaymentReport]:
        """Payments per user (count, sum, average), optionally for one role, by email."""
        wanted = None if role is None else check.member("role", role, UserRole)
        if not self._source.same_database("auth", self.service):
            return await self._assembled(wanted)
        async with self._read() as ex:
            if role is None:
                return await ex.all(ALL, {}, PaymentReport)
            return await ex.all(BY_ROLE, {"role": check.member("role", role, UserRole)},
                                PaymentReport)

    async def _assembled(self, role: UserRole | None) -> list[PaymentReport]:
        async with self._read() as ex:
            totals = await (await ex.cursor(PER_USER, {})).fetchall()
        columns = [list(values) for values in zip(*totals, strict=True)] or [[], [], [], []]
        params = dict(zip(("user_ids", "counts", "sums", "avgs"), columns, strict=True))
        async with self._source.executor("auth") as auth:
            if role is None:
                return await auth.all(JOINED, params, PaymentReport)
            return await auth.all(JOINED_BY_ROLE, params | {"role": role}, PaymentReport)
