"""Idempotency keys: a repeated call returns the first call's result and writes nothing, on
every topology; the same key with other arguments is refused; keys expire and are purged."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared_db.client import Database, Transaction
from shared_db.errors import (
    IdempotencyKeyReusedError,
    NotFoundError,
    TransientConflictError,
    ValidationError,
)
from shared_db.profile.service import create_user_with_profile
from shared_db.records import PaymentRecord, UserWithRelations
from shared_db.tagged_json import decode, encode
from tests.conftest import Stores
from tests.factories import make_user


@pytest.fixture
async def user(db: Database):
    return await make_user(db, "k@example.com", name="K")


def _count(stores: Stores, service: str, table: str) -> int:
    with psycopg.connect(stores.url(service)) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


async def test_a_payment_repeated_with_its_key_is_created_once(db: Database, stores: Stores,
                                                               user) -> None:
    first = await db.payments.create(user.id, Decimal("12.50"), type="payment",
                                     metadata={"order": 7}, idempotency_key="order-7")
    again = await db.payments.create(user.id, Decimal("12.50"), type="payment",
                                     metadata={"order": 7}, idempotency_key="order-7")
    assert again == first and isinstance(again, PaymentRecord)
    assert _count(stores, "payments", "payments") == 1
    other = await db.payments.create(user.id, Decimal("12.50"), type="payment",
                                     metadata={"order": 7}, idempotency_key="order-8")
    assert other.id != first.id
    # Metadata as deep as JSON values may be, inside a record inside the stored result.
    deep: dict[str, Any] = {}
    for _ in range(31):
        deep = {"k": deep}
    nested = await db.payments.create(user.id, Decimal("2.00"), type="payment", metadata=deep,
                                      idempotency_key="order-deep")
    assert nested.metadata == deep and await db.payments.create(
        user.id, Decimal("2.00"), type="payment", metadata=deep,
        idempotency_key="order-deep") == nested
    # A tuple is stored as the JSON list a list is: the same request.
    listed = await db.payments.create(user.id, Decimal("1.00"), type="payment",
                                      metadata={"lines": (1, 2)}, idempotency_key="order-9")
    assert await db.payments.create(user.id, Decimal("1.00"), type="payment",
                                    metadata={"lines": [1, 2]},
                                    idempotency_key="order-9") == listed


async def test_the_same_key_with_other_arguments_is_refused_and_writes_nothing(
        db: Database, stores: Stores, user) -> None:
    await db.payments.create(user.id, Decimal("5.00"), type="payment", idempotency_key="k")
    before = stores.digest()
    with pytest.raises(IdempotencyKeyReusedError) as caught:
        await db.payments.create(user.id, Decimal("6.00"), type="payment", idempotency_key="k")
    assert caught.value.field == "idempotency_key"
    assert "with other arguments" in str(caught.value)
    with pytest.raises(IdempotencyKeyReusedError) as caught:  # another operation, same database
        await db.payment_status.transition(uuid.uuid4(), "initiated", idempotency_key="k")
    assert "and this call is payment_status.transition" in str(caught.value)
    assert stores.digest() == before


async def test_concurrent_repeats_of_one_key_write_once(db: Database, stores: Stores,
                                                        user) -> None:
    results = await asyncio.gather(*(
        db.payments.create(user.id, Decimal("1.00"), type="payment", idempotency_key="burst")
        for _ in range(8)))
    assert len({r.id for r in results}) == 1
    assert _count(stores, "payments", "payments") == 1


async def test_a_failed_call_remembers_nothing(db: Database, stores: Stores) -> None:
    missing = uuid.uuid4()
    for _ in range(2):
        with pytest.raises(NotFoundError):
            await db.payments.create(missing, Decimal("1.00"), type="payment",
                                     idempotency_key="nobody")
    assert _count(stores, "payments", "payments_idempotency_keys") == 0


async def test_users_and_user_with_profile_once(db: Database, stores: Stores) -> None:
    user = await db.users.create(email="once@example.com", password="password1", name="O",
                                 role="VENDOR", idempotency_key="signup-1")
    again = await db.users.create(email="once@example.com", password="password1", name="O",
                                  role="VENDOR", idempotency_key="signup-1")
    assert again == user
    pair = await create_user_with_profile(db, email="pair@example.com", password="password1",
                                          name="P", role="CUSTOMER", profile={"bio": "hi"},
                                          idempotency_key="signup-2")
    repeat = await create_user_with_profile(db, email="pair@example.com",
                                            password="password1", name="P", role="CUSTOMER",
                                            profile={"bio": "hi"}, idempotency_key="signup-2")
    assert repeat == pair and pair[1].bio == "hi"
    assert _count(stores, "auth", "users") == 2
    assert _count(stores, "profile", "user_profiles") == 1
    assert _count(stores, "admin", "audit_logs") == 2  # one user.created each
    with pytest.raises(IdempotencyKeyReusedError):
        await db.users.create(email="other@example.com", password="password1", name="O",
                              role="VENDOR", idempotency_key="signup-1")


async def test_a_status_change_repeated_with_its_key_happens_once(db: Database, stores: Stores,
                                                                  user) -> None:
    payment = await db.payments.create(user.id, Decimal("3.00"), type="payment")
    moved = await db.payment_status.transition(payment.id, "initiated", idempotency_key="t1")
    again = await db.payment_status.transition(payment.id, "initiated", idempotency_key="t1")
    assert again == moved
    assert len(await db.payments.transactions(payment.id)) == 1


async def test_run_with_a_key_runs_its_work_once(db: Database, stores: Stores) -> None:
    runs = 0

    async def bump(tx: Transaction) -> dict[str, Any]:
        nonlocal runs
        runs += 1
        current = await tx.config.value("counter")
        await tx.config.set("counter", (current or 0) + 1)
        return {"counter": (current or 0) + 1, "at": Decimal("1.5")}

    first = await db.run(bump, idempotency_key="bump-1", service="admin")
    again = await db.run(bump, idempotency_key="bump-1", service="admin")
    assert first == again == {"counter": 1, "at": Decimal("1.5")} and runs == 1
    assert await db.config.value("counter") == 1

    async def other(tx: Transaction) -> None:
        await tx.config.set("other", 1)

    with pytest.raises(IdempotencyKeyReusedError):
        await db.run(other, idempotency_key="bump-1", service="admin")
    assert await db.config.value("other") is None

    async def unstorable(tx: Transaction) -> object:
        await tx.config.set("unstorable", 1)
        return object()

    with pytest.raises(ValidationError) as caught:
        await db.run(unstorable, idempotency_key="bump-2", service="admin")
    assert caught.value.field == "result"
    assert await db.config.value("unstorable") is None  # rolled back with the key


async def test_a_key_inside_an_open_transaction_joins_it(db: Database, stores: Stores,
                                                         user) -> None:
    async with db.transaction() as tx:
        first = await tx.payments.create(user.id, Decimal("2.00"), type="payment",
                                          idempotency_key="inner")
        again = await tx.payments.create(user.id, Decimal("2.00"), type="payment",
                                          idempotency_key="inner")
    assert first == again
    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            await tx.payments.create(user.id, Decimal("2.00"), type="payment",
                                     idempotency_key="rolled-back")
            raise RuntimeError("abort")
    assert _count(stores, "payments", "payments") == 1
    assert _count(stores, "payments", "payments_idempotency_keys") == 1


async def test_expired_keys_count_as_new_and_are_purged(db: Database, stores: Stores,
                                                        user) -> None:
    first = await db.payments.create(user.id, Decimal("4.00"), type="payment",
                                     idempotency_key="old")
    await db.payments.create(user.id, Decimal("4.00"), type="payment", idempotency_key="live")
    with psycopg.connect(stores.url("payments"), autocommit=True) as conn:
        conn.execute("UPDATE payments_idempotency_keys SET expires_at = now() - interval '1 s' "
                     "WHERE key = 'old'")
    renewed = await db.payments.create(user.id, Decimal("4.00"), type="payment",
                                       idempotency_key="old")
    assert renewed.id != first.id
    with psycopg.connect(stores.url("payments"), autocommit=True) as conn:
        conn.execute("UPDATE payments_idempotency_keys SET expires_at = now() - interval '1 s' "
                     "WHERE key = 'live'")
    assert await db.idempotency.purge_expired() == 1
    assert _count(stores, "payments", "payments_idempotency_keys") == 1


BAD_KEYS = ["", "   ", "x" * 256, "a\x00b", 42, None.__class__, b"bytes", ["k"]]


@pytest.mark.parametrize("bad", BAD_KEYS, ids=repr)
async def test_bad_keys_are_refused_before_anything_is_sent(db: Database, stores: Stores, user,
                                                            bad: object) -> None:
    before = stores.digest()
    with pytest.raises(ValidationError) as caught:
        await db.payments.create(user.id, Decimal("1.00"), type="payment",
                                 idempotency_key=bad)  # type: ignore[arg-type]
    assert caught.value.field == "idempotency_key"
    with pytest.raises(ValidationError):
        await db.run(lambda tx: tx.config.set("x", 1), idempotency_key="k",
                     service="billing")
    assert stores.digest() == before


# Text as jsonb stores it: any character but NUL and lone surrogates (refused in a result).
STORABLE = st.characters(codec="utf-8", exclude_characters="\x00")
TEXT = st.text(STORABLE)
SCALARS = (st.none() | st.booleans() | st.integers() | TEXT | st.uuids()
           | st.decimals(allow_nan=False, allow_infinity=False) | st.datetimes()
           | st.floats(allow_nan=False, allow_infinity=False))
JSONISH = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                       | st.tuples(inner, inner)
                       | st.dictionaries(st.text(STORABLE, max_size=5), inner, max_size=4),
                       max_leaves=12)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(JSONISH)
def test_stored_results_come_back_as_they_were(value: object) -> None:
    import json
    assert decode(json.loads(json.dumps(encode(value, "result")))) == value


def test_records_come_back_as_records() -> None:
    import json
    from datetime import UTC, datetime

    from shared_db.enums import PaymentStatus, PaymentType
    now = datetime.now(UTC)
    payment = PaymentRecord(uuid.uuid4(), uuid.uuid4(), Decimal("1.00"), "USD",
                            PaymentStatus.pending, PaymentType.payment, None, {"a": [1]}, now,
                            now)
    loaded = UserWithRelations(None, None, (payment,))  # type: ignore[arg-type]
    back = decode(json.loads(json.dumps(encode(loaded, "result"))))
    assert back == loaded and type(back.payments[0].status) is PaymentStatus


async def test_run_compares_the_arguments_it_is_given(db: Database) -> None:
    def transfer(amount: Decimal) -> Any:
        async def work(tx: Transaction) -> Decimal:
            await tx.config.set(f"moved-{amount}", str(amount))
            return amount
        return work

    first = await db.run(transfer(Decimal("10")), idempotency_key="move-1", service="admin",
                         arguments={"amount": Decimal("10")})
    again = await db.run(transfer(Decimal("10")), idempotency_key="move-1", service="admin",
                         arguments={"amount": Decimal("10")})
    assert first == again == Decimal("10")
    # Two closures of one factory share a qualified name: only the arguments tell them apart.
    with pytest.raises(IdempotencyKeyReusedError):
        await db.run(transfer(Decimal("20")), idempotency_key="move-1", service="admin",
                     arguments={"amount": Decimal("20")})
    assert await db.config.value("moved-20") is None
    looped: dict[str, Any] = {}
    looped["self"] = looped
    deep: Any = 1
    for _ in range(40):
        deep = {"k": deep}
    for bad in ({"amount": object()}, {1: "x"}, ["amount"], looped, deep, {"a": "x" * 70_000},
                {"n": 10**5000}, {"s": "a\x00"}, {"\ud800": 1}):
        with pytest.raises(ValidationError) as caught:
            await db.run(transfer(Decimal("30")), idempotency_key="move-2", service="admin",
                         arguments=bad)  # type: ignore[arg-type]
        assert caught.value.field == "arguments"
    assert await db.config.value("moved-30") is None


@pytest.mark.parametrize("isolation", ["repeatable read", "serializable"])
async def test_a_concurrent_repeat_under_snapshot_isolation_gets_the_first_result(
        db: Database, isolation: str) -> None:
    started, runs = asyncio.Event(), 0

    async def slow(tx: Transaction) -> int:
        nonlocal runs
        runs += 1
        await tx.config.set(f"slow-{isolation.replace(' ', '-')}", runs)
        started.set()
        await asyncio.sleep(0.3)  # the repeat's claim waits on this uncommitted key
        return runs

    first = asyncio.create_task(db.run(
        slow, idempotency_key=f"slow-{isolation}", service="admin",
        isolation=isolation))  # type: ignore[arg-type]
    await asyncio.wait_for(started.wait(), 10)
    again = await db.run(slow, idempotency_key=f"slow-{isolation}", service="admin",
                         isolation=isolation)  # type: ignore[arg-type]
    assert await first == again == 1 and runs == 1


@pytest.mark.parametrize("isolation", ["repeatable read", "serializable"])
async def test_a_keyed_write_inside_a_snapshot_transaction_waits_and_replays(
        db: Database, stores: Stores, user, isolation: str) -> None:
    started = asyncio.Event()

    async def pay(tx: Transaction, key: str, hold: float) -> object:
        payment = await tx.payments.create(user.id, Decimal("7.00"), type="payment",
                                           idempotency_key=key)
        started.set()
        await asyncio.sleep(hold)  # a repeat's claim waits on this uncommitted key
        return payment.id

    def run(key: str, hold: float, retries: int) -> Any:
        return db.run(lambda tx: pay(tx, key, hold), isolation=isolation,  # type: ignore[arg-type]
                      retries=retries)

    first = asyncio.create_task(run("in-1", 0.3, 3))
    await asyncio.wait_for(started.wait(), 10)
    # The refused claim aborts the caller's transaction: db.run runs all of it again, and the
    # claim of the new transaction finds the first call's payment.
    assert await run("in-1", 0, 3) == await first
    assert _count(stores, "payments", "payments") == 1
    started.clear()
    slow = asyncio.create_task(run("in-2", 0.3, 0))
    await asyncio.wait_for(started.wait(), 10)
    with pytest.raises(TransientConflictError):  # the retryable conflict, not 25P02
        async with db.transaction(isolation=isolation) as tx:  # type: ignore[arg-type]
            await pay(tx, "in-2", 0)
    await slow
    assert _count(stores, "payments", "payments") == 2


@pytest.mark.parametrize("result", ["a\x00b", {"k": "\udfff"}, {"\x00": 1}, [10**5000]])
async def test_a_result_that_cannot_be_stored_is_refused_and_undone(
        db: Database, stores: Stores, result: object) -> None:
    async def work(tx: Transaction) -> object:
        await tx.config.set("done", True)
        return result

    before = stores.digest()
    with pytest.raises(ValidationError) as caught:
        await db.run(work, idempotency_key="unstorable", service="admin")
    assert caught.value.field == "result" and stores.digest() == before

