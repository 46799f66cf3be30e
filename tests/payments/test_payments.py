"""Payments: validation, the status state machine, the concurrent race, pagination."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared_db.client import Database
from shared_db.context import acting_as
from shared_db.enums import PaymentStatus
from shared_db.errors import (
    ConflictError,
    InvalidTransitionError,
    NotFoundError,
    ValidationError,
)
from shared_db.payments.status import TRANSITIONS
from tests.conftest import Stores
from tests.factories import make_user

ALLOWED = {(a, b) for a, targets in TRANSITIONS.items() for b in targets}


@pytest.fixture
async def user(db: Database):
    return await make_user(db, "p@example.com", name="P")


async def test_create_with_defaults(db: Database, user) -> None:
    payment = await db.payments.create(user.id, Decimal("19.99"), type="initiate",
                                       description="'; DROP TABLE payments; --",
                                       metadata={"order": 42, "items": ["a", "b"]})
    assert (payment.amount, payment.currency, payment.status) == (
        Decimal("19.99"), "USD", PaymentStatus.pending)
    assert payment.description == "'; DROP TABLE payments; --"
    assert payment.metadata == {"order": 42, "items": ["a", "b"]}
    assert await db.payments.get(payment.id) == payment
    eur = await db.payments.create(user.id, "0.01", type="payment", currency="EUR")
    assert eur.amount == Decimal("0.01") and eur.currency == "EUR"


BAD_AMOUNTS = [Decimal("0"), Decimal("-1"), Decimal("NaN"), Decimal("Infinity"),
               Decimal("1.001"), Decimal("100000000.00"), 1.5, float("nan"), "abc", None, True]


@pytest.mark.parametrize("amount", BAD_AMOUNTS, ids=repr)
async def test_bad_amounts_are_refused(db: Database, user, stores: Stores,
                                       amount: object) -> None:
    before = stores.digest()
    with pytest.raises(ValidationError) as caught:
        await db.payments.create(user.id, amount, type="payment")
    assert caught.value.field == "amount"
    assert stores.digest() == before


async def test_a_currency_of_no_minor_unit_takes_whole_amounts_only(
        db: Database, user, stores: Stores) -> None:
    before = stores.digest()
    for currency in ("JPY", "KRW"):
        with pytest.raises(ValidationError) as caught:
            await db.payments.create(user.id, "9.99", type="payment", currency=currency)
        assert caught.value.field == "amount" and "no minor unit" in caught.value.rule
    assert stores.digest() == before
    yen = await db.payments.create(user.id, "1500.00", type="payment", currency="JPY")
    assert yen.amount == Decimal("1500")


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"currency": "usd"}, "currency"), ({"currency": "XXY"}, "currency"),
    ({"currency": "US"}, "currency"), ({"type": "refund"}, "type"),
    ({"metadata": {"x": object()}}, "metadata"), ({"metadata": ["not", "an", "object"]},
                                                  "metadata"),
    ({"metadata": {"nul": "a\x00b"}}, "metadata"), ({"metadata": {"big": "x" * 70_000}},
                                                    "metadata"),
    ({"description": "x" * 1_000_001}, "description"), ({"description": "a\x00b"},
                                                        "description"),
])
async def test_bad_fields_are_refused(db: Database, user, stores: Stores, kwargs: dict,
                                      field: str) -> None:
    before = stores.digest()
    with pytest.raises(ValidationError) as caught:
        await db.payments.create(user.id, Decimal("1.00"), **{"type": "payment", **kwargs})
    assert caught.value.field == field
    assert stores.digest() == before


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture],
          deadline=None)
@given(amount=st.decimals(allow_nan=True, allow_infinity=True))
async def test_any_decimal_is_stored_exactly_or_refused(db: Database, user,
                                                        amount: Decimal) -> None:
    try:
        payment = await db.payments.create(user.id, amount, type="payment")
    except ValidationError as error:
        assert error.field == "amount"
    else:
        assert payment.amount == amount and Decimal(0) < amount <= Decimal("99999999.99")


async def test_missing_user(db: Database) -> None:
    with pytest.raises(NotFoundError):
        await db.payments.create(uuid.uuid4(), Decimal("1.00"), type="payment")


@pytest.mark.parametrize(("start", "target"), [(a, b) for a in PaymentStatus
                                               for b in PaymentStatus])
async def test_state_machine(db: Database, user, stores: Stores,
                             start: PaymentStatus, target: PaymentStatus) -> None:
    payment = await db.payments.create(user.id, Decimal("3.00"), type="payment")
    with psycopg.connect(stores.url("payments"), autocommit=True) as conn:
        conn.execute("UPDATE payments SET status = %s WHERE id = %s", (start.value, payment.id))
    before = stores.digest()
    if (start, target) in ALLOWED:
        moved = await db.payment_status.transition(payment.id, target)
        assert moved.status is target
        (row,) = await db.payments.transactions(payment.id)
        assert (row.status, row.amount, row.transaction_type) == (
            target.value, Decimal("3.00"), f"status.{target.value}")
        assert row.metadata == {"from": start.value, "to": target.value}
        (audit,) = await db.audit.for_resource("payment", payment.id)
        assert audit.action == "payment.status_changed" and audit.user_id == user.id
    else:
        with pytest.raises(InvalidTransitionError, match=f"from {start.value} to"):
            await db.payment_status.transition(payment.id, target)
        assert stores.digest() == before


async def test_full_happy_path_with_actor(db: Database, user) -> None:
    payment = await db.payments.create(user.id, Decimal("10.00"), type="payment")
    with acting_as(user.id, "192.0.2.1", "checkout/1"):
        for status in ("initiated", "processing", "completed"):
            await db.payment_status.transition(payment.id, status, metadata={"psp": "x"})
    rows = await db.payments.transactions(payment.id)
    assert [r.status for r in rows] == ["initiated", "processing", "completed"]
    audits = await db.audit.for_resource("payment", payment.id)
    assert {(a.ip_address, a.user_agent) for a in audits} == {("192.0.2.1", "checkout/1")}


async def test_metadata_never_rewrites_the_change_recorded(db: Database, user) -> None:
    payment = await db.payments.create(user.id, Decimal("10.00"), type="payment")
    await db.payment_status.transition(payment.id, "initiated",
                                       metadata={"from": "completed", "to": "refunded", "psp": 7})
    (row,) = await db.payments.transactions(payment.id)
    assert row.metadata == {"from": "pending", "to": "initiated", "psp": 7}


async def test_expected_status_guards_stale_reads(db: Database, user) -> None:
    payment = await db.payments.create(user.id, Decimal("1.00"), type="payment")
    await db.payment_status.transition(payment.id, "initiated")
    with pytest.raises(ConflictError, match="is initiated, not pending"):
        await db.payment_status.transition(payment.id, "cancelled", expected="pending")


async def test_concurrent_transitions_exactly_one_wins(db: Database, user,
                                                       stores: Stores) -> None:
    for _ in range(5):
        payment = await db.payments.create(user.id, Decimal("7.00"), type="payment")
        await db.payment_status.transition(payment.id, "initiated")
        await db.payment_status.transition(payment.id, "processing")
        # Two transactions on two real connections, both past their status check before either
        # writes: the row lock makes the second wait, then its compare-and-set finds no match.
        results = await asyncio.gather(
            db.payment_status.transition(payment.id, "completed"),
            db.payment_status.transition(payment.id, "failed"), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert len(errors) == 1, results
        assert isinstance(errors[0], (ConflictError, InvalidTransitionError))
        final = await db.payments.get(payment.id)
        assert final is not None and final.status in (PaymentStatus.completed,
                                                      PaymentStatus.failed)
        rows = await db.payments.transactions(payment.id)
        assert [r.status for r in rows][-1] == final.status.value and len(rows) == 3


async def test_race_inside_open_transactions(db: Database, user) -> None:
    payment = await db.payments.create(user.id, Decimal("7.00"), type="payment")
    first_done = asyncio.Event()

    async def first() -> None:
        async with db.transaction() as tx:
            await tx.payment_status.transition(payment.id, "initiated")
            first_done.set()
            await asyncio.sleep(0.2)  # hold the row lock while the other one tries

    async def second() -> None:
        await first_done.wait()
        await db.payment_status.transition(payment.id, "cancelled", expected="pending")

    results = await asyncio.gather(first(), second(), return_exceptions=True)
    assert results[0] is None and isinstance(results[1], ConflictError)
