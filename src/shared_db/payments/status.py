"""Payment status as a state machine; every change leaves a transaction row and an audit row.

    pending -> initiated -> processing -> completed | failed
    pending | initiated | processing -> cancelled

Nothing leaves completed, failed or cancelled. A change is a compare-and-set
(``UPDATE ... WHERE status = <the status we checked>``): of two concurrent changes of one payment
exactly one matches; the other finds the status moved and gets ``ConflictError``.
"""

from __future__ import annotations

import uuid
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import bindparam, func, insert, select, update

from shared_db import validation as check
from shared_db.admin.repository import AuditRepository
from shared_db.enums import PaymentStatus
from shared_db.errors import ConflictError, InvalidTransitionError, NotFoundError
from shared_db.idempotency import key, once
from shared_db.payments.models import Payment, PaymentTransaction
from shared_db.records import PaymentRecord, PaymentTransactionRecord
from shared_db.repository import Repository
from shared_db.sql import Query, columns

P = PaymentStatus
TRANSITIONS: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    P.pending: frozenset({P.initiated, P.cancelled}),
    P.initiated: frozenset({P.processing, P.cancelled}),
    P.processing: frozenset({P.completed, P.failed, P.cancelled}),
    P.completed: frozenset(),
    P.failed: frozenset(),
    P.cancelled: frozenset(),
}

CURRENT = Query.build("payments.current_status", select(Payment.status).where(
    Payment.id == bindparam("id")))
SWAP = Query.build("payments.swap_status", update(Payment).where(
    Payment.id == bindparam("id"), Payment.status == bindparam("expected")).values(
    status=bindparam("status"), updated_at=func.now()).returning(*columns(PaymentRecord, Payment)))
RECORD = Query.build("payments.record_transaction", insert(PaymentTransaction).values(
    id=func.gen_random_uuid(), payment_id=bindparam("payment_id"),
    transaction_type=bindparam("transaction_type"), amount=bindparam("amount"),
    status=bindparam("status"), metadata=bindparam("metadata"),
).returning(*columns(PaymentTransactionRecord, PaymentTransaction)))


def check_transition(current: PaymentStatus, target: PaymentStatus) -> None:
    """Raises InvalidTransitionError unless ``current -> target`` is allowed."""
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[current])) or "none (final)"
        raise InvalidTransitionError(
            f"payment status cannot go from {current.value} to {target.value}; "
            f"allowed from {current.value}: {allowed}")


class PaymentStatusService(Repository):
    service = "payments"

    async def transition(self, payment_id: uuid.UUID, to: PaymentStatus | str, *,
                         expected: PaymentStatus | str | None = None,
                         metadata: dict[str, Any] | None = None,
                         idempotency_key: str | None = None) -> PaymentRecord:
        """Move the payment to ``to``, recording the transaction and the audit row with it.

        Args:
            expected: the status the caller last saw; a different current status is a
                ConflictError rather than a silent change from a status they did not see.

            idempotency_key: make the change exactly once (``shared_db.idempotency``): a
                repeat with the same key returns the payment as the first call left it.

        Raises:
            InvalidTransitionError: the state machine forbids the change.
            ConflictError: the status changed concurrently (or differs from ``expected``).
            NotFoundError: no such payment.
        """
        target = check.member("to", to, PaymentStatus)
        seen = None if expected is None else check.member("expected", expected, PaymentStatus)
        meta = check.json_object("metadata", metadata)
        if idempotency_key is not None:
            request = {"payment_id": str(payment_id), "to": target, "expected": seen,
                       "metadata": meta}
            return await once(self._source.unit, self.service, key(idempotency_key),
                              "payment_status.transition", request,
                              lambda tx: PaymentStatusService(tx)._apply(payment_id, target,
                                                                         seen, meta))
        return await self._apply(payment_id, target, seen, meta)

    async def _apply(self, payment_id: uuid.UUID, target: PaymentStatus,
                     seen: PaymentStatus | None, meta: dict[str, Any] | None) -> PaymentRecord:
        async with self._source.unit() as tx:
            async with tx.executor(self.service) as ex:
                current = await ex.scalar(CURRENT, {"id": payment_id})
                if current is None:
                    raise NotFoundError(f"payment {payment_id} does not exist")
                current = PaymentStatus(current)
                if seen is not None and seen != current:
                    raise ConflictError(f"payment {payment_id} is {current.value}, "
                                        f"not {seen.value}")
                check_transition(current, target)
                payment = await ex.one(SWAP, {"id": payment_id, "expected": current,
                                              "status": target}, PaymentRecord)
                if payment is None:
                    raise ConflictError(f"payment {payment_id} changed status concurrently; "
                                        "read it again")
                # The caller's metadata never rewrites which change this row records.
                details = {**(meta or {}), "from": current.value, "to": target.value}
                await ex.one(RECORD, {
                    "payment_id": payment_id, "transaction_type": f"status.{target.value}",
                    "amount": payment.amount, "status": target.value,
                    "metadata": Jsonb(details)}, PaymentTransactionRecord)
            await AuditRepository(tx).append("payment.status_changed", resource_type="payment",
                                  resource_id=payment_id,
                                  details={"from": current.value, "to": target.value},
                                  user_id=tx.actor().actor_id or payment.user_id)
        return payment
