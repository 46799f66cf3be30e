"""Payments: create, read, and list with offset or keyset pagination (guide 5.2)."""

from __future__ import annotations

import uuid
from functools import lru_cache
from operator import attrgetter
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import (
    ARRAY,
    Numeric,
    Text,
    Uuid,
    bindparam,
    cast,
    func,
    literal_column,
    select,
    true,
    tuple_,
)
from sqlalchemy.dialects.postgresql import JSONB, insert

from shared_db import validation as check
from shared_db.auth.models import User
from shared_db.enums import PaymentStatus, PaymentType, pg_enum
from shared_db.errors import ValidationError
from shared_db.idempotency import key, once
from shared_db.pagination import decode_cursor, encode_cursor, page_number, page_size
from shared_db.payments.currencies import ISO_4217, WHOLE_UNITS
from shared_db.payments.models import Payment, PaymentTransaction
from shared_db.records import Page, PaymentRecord, PaymentTransactionRecord
from shared_db.references import insert_for_live_user
from shared_db.repository import Repository, point_lookup
from shared_db.sql import Query, columns

_PAYMENT = columns(PaymentRecord, Payment)
_NEWEST_FIRST = (Payment.created_at.desc(), Payment.id.desc())
_AFTER = tuple_(Payment.created_at, Payment.id) < tuple_(bindparam("after_at"),
                                                          bindparam("after_id"))
_OF_USER = Payment.user_id == bindparam("user_id")
_WITH_STATUS = Payment.status == bindparam("status")

CREATE = Query.build("payments.create", insert(Payment).from_select(
    ["id", "user_id", "amount", "currency", "status", "type", "description", "metadata"],
    select(func.gen_random_uuid(), User.id, bindparam("amount", type_=Numeric(10, 2)),
           bindparam("currency", type_=Text), cast(bindparam("status"), pg_enum(PaymentStatus)),
           cast(bindparam("type"), pg_enum(PaymentType)), bindparam("description", type_=Text),
           bindparam("metadata", type_=JSONB)).where(User.id == bindparam("user_id"),
                                        User.deleted_at.is_(None)),
).returning(*_PAYMENT))
INSERT = Query.build("payments.insert", insert(Payment).values(
    id=func.gen_random_uuid(), user_id=bindparam("user_id"),
    amount=bindparam("amount", type_=Numeric(10, 2)), currency=bindparam("currency", type_=Text),
    status=cast(bindparam("status"), pg_enum(PaymentStatus)),
    type=cast(bindparam("type"), pg_enum(PaymentType)),
    description=bindparam("description", type_=Text),
    metadata_=bindparam("metadata", type_=JSONB)).returning(*_PAYMENT))
GET = Query.build("payments.get", select(*_PAYMENT).where(Payment.id == bindparam("id")))
BY_ID = point_lookup("payments", GET, Query.build("payments.get.many", select(*_PAYMENT).where(
    Payment.id == func.any(bindparam("keys", type_=ARRAY(Uuid))))), "id", PaymentRecord,
    attrgetter("id"))
TRANSACTIONS = Query.build("payments.transactions", select(
    *columns(PaymentTransactionRecord, PaymentTransaction)).where(
    PaymentTransaction.payment_id == bindparam("id")).order_by(
    PaymentTransaction.created_at, PaymentTransaction.id))


@lru_cache(maxsize=256)
def listing(by_user: bool, by_status: bool, after: bool, limit: int, offset: bool = False,
            ) -> Query:
    """The page query for one combination of filters, compiled once per page size.

    The LIMIT is written into the statement: with a parameter there, the planner's generic plan
    cannot know the page is small, and pages measured about 15% slower.
    """
    where = [*([_OF_USER] if by_user else []), *([_WITH_STATUS] if by_status else []),
             *([_AFTER] if after else [])]
    query = select(*_PAYMENT).where(*where).order_by(*_NEWEST_FIRST).limit(
        literal_column(str(int(limit))))
    name = f"payments.list{'.user' if by_user else ''}{'.status' if by_status else ''}" \
           f"{'.after' if after else ''}{'.offset' if offset else ''}.{limit}"
    return Query.build(name, query.offset(bindparam("offset")) if offset else query)


@lru_cache(maxsize=256)
def counted(by_user: bool, by_status: bool, limit: int) -> Query:
    """An offset page and the number of rows of every page, read in one statement, so from one
    snapshot: a write between two statements could make the two disagree. The total's one row
    is joined to the page, so an empty page still brings the total (with NULL columns)."""
    where = [*([_OF_USER] if by_user else []), *([_WITH_STATUS] if by_status else [])]
    total = select(func.count().label("total")).select_from(Payment).where(*where).subquery("t")
    page = select(*_PAYMENT).where(*where).order_by(*_NEWEST_FIRST).limit(
        literal_column(str(int(limit)))).offset(bindparam("offset")).lateral("p")
    query = select(total.c.total, *page.c).select_from(total.outerjoin(page, true())).order_by(
        page.c.created_at.desc(), page.c.id.desc())
    name = f"payments.list{'.user' if by_user else ''}{'.status' if by_status else ''}" \
           f".counted.{limit}"
    return Query.build(name, query)


def _counted_row(total: int, *payment: Any) -> tuple[int, PaymentRecord | None]:
    return total, None if payment[0] is None else PaymentRecord(*payment)


def _status(status: PaymentStatus | str | None) -> PaymentStatus | None:
    return None if status is None else check.member("status", status, PaymentStatus)


class PaymentRepository(Repository):
    service = "payments"

    async def create(self, user_id: uuid.UUID, amount: Any, *, type: PaymentType | str,
                     currency: str = "USD", description: str | None = None,
                     metadata: dict[str, Any] | None = None,
                     idempotency_key: str | None = None) -> PaymentRecord:
        """A ``pending`` payment of a live user.

        ``idempotency_key``: make the call exactly once (``shared_db.idempotency``): a repeat
        with the same key returns the payment the first call created.

        Raises:
            ValidationError: amount, currency, type, description or metadata breaks its rule.
            NotFoundError: the user does not exist or is deleted.
            IdempotencyKeyReusedError: the key was first used with other arguments.
            OutcomeUnknownError: the connection was lost after the write was sent; call again
                with the same key to learn what happened.
        """
        if not isinstance(currency, str) or currency not in ISO_4217:
            raise ValidationError("currency", f"must be an ISO 4217 code such as USD or EUR, "
                                  f"got {check.shown(currency)}")
        meta = check.json_object("metadata", metadata)
        value = check.amount(amount)
        if currency in WHOLE_UNITS and value != value.to_integral_value():
            raise ValidationError("amount", f"must be a whole number in {currency}, which has "
                                  f"no minor unit, got {value}")
        params = {"user_id": user_id, "amount": value, "currency": currency,
                  "status": PaymentStatus.pending, "type": check.member("type", type, PaymentType),
                  "description": check.optional_text("description", description, max_length=1000),
                  "metadata": None if meta is None else Jsonb(meta)}
        if idempotency_key is not None:
            request = {"user_id": str(user_id), "amount": params["amount"],
                       "currency": currency, "type": params["type"],
                       "description": params["description"], "metadata": meta}
            return await once(self._source.unit, self.service, key(idempotency_key),
                              "payments.create", request,
                              lambda tx: PaymentRepository(tx)._insert(params))
        return await self._insert(params)

    async def _insert(self, params: dict[str, Any]) -> PaymentRecord:
        return await insert_for_live_user(self._source, self.service, CREATE, INSERT, params,
                                          PaymentRecord)

    async def get(self, payment_id: uuid.UUID) -> PaymentRecord | None:
        return await self._lookup(BY_ID, payment_id)

    async def transactions(self, payment_id: uuid.UUID) -> list[PaymentTransactionRecord]:
        """The payment's ``payment_transactions`` rows, oldest first."""
        async with self._read() as ex:
            return await ex.all(TRANSACTIONS, {"id": payment_id}, PaymentTransactionRecord)

    async def list_page(self, user_id: uuid.UUID | None = None, *,
                        status: PaymentStatus | str | None = None, page: int = 1,
                        per_page: int = 20, with_total: bool = False) -> Page[PaymentRecord]:
        """Offset pagination (the guide's ``skip: (page - 1) * 20, take: 20``), newest first."""
        size, number, wanted = page_size(per_page, "per_page"), page_number(page), _status(status)
        key = (user_id is not None, wanted is not None)
        params = {"user_id": user_id, "status": wanted, "offset": (number - 1) * size}
        async with self._read() as ex:
            if not with_total:
                items = await ex.all(listing(*key, False, size, offset=True), params,
                                     PaymentRecord)
                return Page(tuple(items))
            rows = await ex.all(counted(*key, size), params, _counted_row)
        return Page(tuple(p for _, p in rows if p is not None), None, rows[0][0])

    async def page(self, user_id: uuid.UUID | None = None, *,
                   status: PaymentStatus | str | None = None, limit: int = 20,
                   cursor: str | None = None) -> Page[PaymentRecord]:
        """Keyset pagination, newest first; pass ``next_cursor`` back for the next page."""
        size, wanted = page_size(limit), _status(status)
        params: dict[str, Any] = {"user_id": user_id, "status": wanted}
        if cursor is not None:
            params["after_at"], params["after_id"] = decode_cursor(cursor)
        query = listing(user_id is not None, wanted is not None, cursor is not None, size + 1)
        async with self._read() as ex:
            rows = await ex.all(query, params, PaymentRecord)
        more = len(rows) > size
        items = tuple(rows[:size])
        last = items[-1] if items else None
        next_cursor = encode_cursor(last.created_at, last.id) if more and last else None
        return Page(items, next_cursor)
