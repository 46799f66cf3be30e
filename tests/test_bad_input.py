"""Bad input, case by case: a typed error naming the parameter, and no row changed.

``test_generated_input`` calls every entry point with generated values; these are the cases
found by hand, each with the error it must give.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import shared_db
from shared_db.auth.batch import NewUser
from shared_db.client import Database
from shared_db.config import load_settings
from shared_db.errors import (
    ClientClosedError,
    ConflictError,
    DataAccessError,
    SharedDbError,
    ValidationError,
)
from tests.conftest import Stores
from tests.factories import PASSWORD_HASH

MEGABYTE = "x" * 1_048_576
NUL = "a\x00b"
SQL = "'); DELETE FROM users; --"

Call = Callable[[Database, uuid.UUID], Awaitable[object]]

CASES: list[tuple[str, Call, str]] = [
    ("megabyte email", lambda db, u: db.users.create(
        email=MEGABYTE + "@x.io", password_hash=PASSWORD_HASH, name="N", role="ADMIN"), "email"),
    ("NUL in email", lambda db, u: db.users.create(
        email="a\x00@x.io", password_hash=PASSWORD_HASH, name="N", role="ADMIN"), "email"),
    ("NUL in name", lambda db, u: db.users.create(
        email="n@x.io", password_hash=PASSWORD_HASH, name=NUL, role="ADMIN"), "name"),
    ("megabyte name", lambda db, u: db.users.create(
        email="n@x.io", password_hash=PASSWORD_HASH, name=MEGABYTE, role="ADMIN"), "name"),
    ("password over 72 bytes", lambda db, u: db.users.create(
        email="n@x.io", password="é" * 40, name="N", role="ADMIN"), "password"),
    ("unknown role", lambda db, u: db.users.create(
        email="n@x.io", password_hash=PASSWORD_HASH, name="N", role=SQL), "role"),
    ("role of another enum", lambda db, u: db.users.create(
        email="n@x.io", password_hash=PASSWORD_HASH, name="N", role="pending"), "role"),
    ("NUL in device id", lambda db, u: db.devices.register(u, NUL), "device_id"),
    ("megabyte user agent", lambda db, u: db.sessions.open(
        u, uuid.uuid4(), user_agent=MEGABYTE), "user_agent"),
    ("NUL in presented token", lambda db, u: db.tokens.rotate(NUL), "token"),
    ("megabyte bio", lambda db, u: db.profiles.create(u, bio=MEGABYTE), "bio"),
    ("preferences not an object", lambda db, u: db.profiles.create(
        u, preferences="dark"), "preferences"),
    ("payment status not in the enum", lambda db, u: db.payment_status.transition(
        uuid.uuid4(), "refunded"), "to"),
    ("metadata with bytes", lambda db, u: db.payments.create(
        u, Decimal(1), type="payment", metadata={"raw": b"\x00"}), "metadata"),
    ("amount as float", lambda db, u: db.payments.create(u, 0.1, type="payment"), "amount"),
    ("config value with a set", lambda db, u: db.config.set("k", {1}), "value"),
    ("audit details not an object", lambda db, u: db.audit.record(
        "x", details=[1]), "details"),  # type: ignore[arg-type]
    ("unknown column by name", lambda db, u: db.users.get_fields(u, SQL), "fields"),
    ("eager with 0 payments", lambda db, u: db.users.eager(u, payments=0), "payments"),
    ("lone surrogate in name", lambda db, u: db.users.create(
        email="s@x.io", password_hash=PASSWORD_HASH, name="\ud800", role="ADMIN"), "name"),
    ("lone surrogate in email", lambda db, u: db.users.create(
        email="\udfff@x.io", password_hash=PASSWORD_HASH, name="N", role="ADMIN"), "email"),
    ("lone surrogate in create_many", lambda db, u: db.users.create_many([NewUser(
        email="b@x.io", name="a\ud800", role="ADMIN", password_hash=PASSWORD_HASH)]),
     "users[0].name"),
    ("lone surrogate in a description", lambda db, u: db.payments.create(
        u, Decimal(1), type="payment", description="\ud800"), "description"),
    ("lone surrogate in a lookup", lambda db, u: db.users.get_by_email("\ud800@x.io"),
     "email"),
    ("lone surrogate in a login", lambda db, u: db.users.verify_password(
        "owner@example.com", "pass\ud800word"), "password"),
    ("deeply nested cursor", lambda db, u: db.payments.page(cursor=base64.urlsafe_b64encode(
        ("[" * 700 + "]" * 700).encode()).decode()), "cursor"),
    ("plaintext as password_hash", lambda db, u: db.users.create(
        email="h@x.io", password_hash="password123", name="N", role="ADMIN"),
     "password_hash"),
    ("plaintext as a NewUser's hash", lambda db, u: db.users.create_many([NewUser(
        email="h@x.io", name="N", role="ADMIN", password_hash="password123")]),
     "users[0].password_hash"),
    ("login password over 72 bytes", lambda db, u: db.users.verify_password(
        "owner@example.com", "x" * 73), "password"),
    ("login password not a str", lambda db, u: db.users.verify_password(
        "owner@example.com", 12345678), "password"),  # type: ignore[arg-type]
    ("flag as a string", lambda db, u: db.users.create(
        email="f@x.io", password_hash=PASSWORD_HASH, name="N", role="ADMIN",
        email_verified="false"), "email_verified"),  # type: ignore[arg-type]
    ("NewUser flag as a string", lambda db, u: db.users.create_many([NewUser(
        email="f@x.io", name="N", role="ADMIN", password_hash=PASSWORD_HASH,
        email_verified="false")]), "users[0].email_verified"),  # type: ignore[arg-type]
    ("id that is no UUID", lambda db, u: db.users.get("not-a-uuid"), "user_id"),  # type: ignore[arg-type]
    ("id as an int", lambda db, u: db.payments.get(7), "payment_id"),  # type: ignore[arg-type]
    ("id as a UUID string", lambda db, u: db.users.soft_delete(str(u)), "user_id"),  # type: ignore[arg-type]
    ("amount with 3 places", lambda db, u: db.payments.create(
        u, Decimal("1.005"), type="payment"), "amount"),
    ("amount NaN", lambda db, u: db.payments.create(u, Decimal("NaN"), type="payment"),
     "amount"),
    ("page past the bigint offset", lambda db, u: db.payments.list_page(page=2**62), "page"),
    ("unknown service", lambda db, u: db.run(_read, service="billing",
                                             idempotency_key="k"), "service"),
    ("unknown service without a key", lambda db, u: db.run(_read, service="admin "),
     "service"),
    ("unknown isolation", lambda db, u: db.run(_read, isolation="chaos"), "isolation"),  # type: ignore[arg-type]
    ("work that is not callable", lambda db, u: db.run(42), "work"),  # type: ignore[arg-type]
    ("idempotency key too long", lambda db, u: db.payments.create(
        u, Decimal(1), type="payment", idempotency_key="k" * 256), "idempotency_key"),
    ("JSON nested too deep", lambda db, u: db.config.set("k", _nested(100)), "value"),
    ("JSON with a surrogate key", lambda db, u: db.payments.create(
        u, Decimal(1), type="payment", metadata={"\ud800": 1}), "metadata"),
]


async def _read(tx: object) -> None:
    return None


def _nested(depth: int) -> object:
    value: object = []
    for _ in range(depth):
        value = [value]
    return value


HASH = "$2b$04$JnfTEVhhG5yzPho/1c/sjeo99NUPRaCHqJpkkSyGtFCKdgEL.c5Eq"


@pytest.fixture
async def user_id(db: Database) -> uuid.UUID:
    user = await db.users.create(email="owner@example.com", password_hash=HASH, name="O",
                                 role="CUSTOMER")
    return user.id


@pytest.mark.parametrize(("label", "call", "field"), CASES, ids=[c[0] for c in CASES])
async def test_each_bad_input_is_refused_cleanly(db: Database, stores: Stores,
                                                 user_id: uuid.UUID, label: str, call: Call,
                                                 field: str) -> None:
    before = stores.digest()
    with pytest.raises(ValidationError) as caught:
        await call(db, user_id)
    assert caught.value.field == field, caught.value
    assert stores.digest() == before


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(email=st.text(max_size=300), name=st.text(max_size=50))
async def test_any_text_as_email_and_name(db: Database, stores: Stores, email: str,
                                          name: str) -> None:
    before = stores.digest()
    try:
        user = await db.users.create(email=email, password_hash=PASSWORD_HASH, name=name,
                                     role="VENDOR")
    except DataAccessError as error:
        assert isinstance(error, ValidationError) or "already exists" in str(error)
        assert stores.digest() == before
    else:
        assert user.email == email.strip().lower() and user.name == name
        assert "\x00" not in email and (await db.users.get(user.id)) == user


async def test_amounts_follow_one_rule(db: Database, user_id: uuid.UUID) -> None:
    for amount, stored in ((Decimal("1.10000"), "1.10"), (5, "5.00"), ("12.34", "12.34"),
                           ("0.01", "0.01"), ("7", "7.00"),
                           (Decimal("99999999.99"), "99999999.99")):
        payment = await db.payments.create(user_id, amount, type="payment")
        assert payment.amount == Decimal(stored) and str(payment.amount) == stored


@pytest.mark.parametrize("text", ["1_00", " 1.00", "1.00\n", "+5", "1e2", "1E-2", ".5", "5.",
                                  "1,00", "0x10", "\u0661.\u0660\u0660"])
async def test_amount_strings_are_plain_decimals(db: Database, user_id: uuid.UUID,
                                                 stores: Stores, text: str) -> None:
    before = stores.digest()
    with pytest.raises(ValidationError, match="amount: must be a decimal number in ASCII"):
        await db.payments.create(user_id, text, type="payment")
    assert stores.digest() == before


async def test_eager_many_answers_each_distinct_id_once(db: Database,
                                                        user_id: uuid.UUID) -> None:
    other = await db.users.create(email="b@example.com", password_hash=HASH, name="B",
                                  role="VENDOR")
    for _ in range(3):
        await db.payments.create(user_id, Decimal(1), type="payment")
    loaded = await db.users.eager_many([user_id, user_id, other.id, user_id], payments=10)
    assert [e.user.id for e in loaded] == [user_id, other.id]
    assert len(loaded[0].payments) == 3 and len({p.id for p in loaded[0].payments}) == 3


async def test_a_non_bcrypt_hash_written_around_the_api(db: Database, stores: Stores) -> None:
    await db.users.create(email="raw@example.com", password_hash=HASH, name="R", role="ADMIN")
    with psycopg.connect(stores.url("auth")) as conn:
        conn.execute("UPDATE users SET password_hash = 'plaintext' WHERE email = 'raw@example.com'")
    with pytest.raises(DataAccessError, match="not a bcrypt hash"):
        await db.users.verify_password("raw@example.com", "plaintext")


async def test_the_status_race_loser_with_expected_always_gets_conflict(
        db: Database, user_id: uuid.UUID) -> None:
    for _ in range(5):
        payment = await db.payments.create(user_id, Decimal("7.00"), type="payment")
        results = await asyncio.gather(*(db.payment_status.transition(
            payment.id, to, expected="pending") for to in ("initiated", "cancelled")),
            return_exceptions=True)
        losers = [r for r in results if isinstance(r, BaseException)]
        assert len(losers) == 1 and type(losers[0]) is ConflictError, results


async def test_a_closed_database_is_a_shared_db_error(stores: Stores) -> None:
    db = Database(stores.settings())
    with pytest.raises(ClientClosedError):
        await db.users.get(uuid.uuid4())
    assert issubclass(ClientClosedError, SharedDbError)
    async with db:
        assert await db.users.get(uuid.uuid4()) is None
    with pytest.raises(ClientClosedError):
        await db.recover()
    with pytest.raises(ClientClosedError):
        db.session()
    with pytest.raises(ClientClosedError):
        async with db.transaction() as tx:
            await tx.users.get(uuid.uuid4())


def test_create_user_with_profile_is_exported() -> None:
    assert "create_user_with_profile" in shared_db.__all__
    from shared_db import create_user_with_profile
    assert callable(create_user_with_profile)


def test_the_client_refuses_what_is_not_its_settings() -> None:
    with pytest.raises(ValidationError, match="settings: must be the Settings of load_settings"
                                              r"\(\), got str"):
        Database("postgresql://localhost/app")  # type: ignore[arg-type]
    made = load_settings({"DATABASE_URL": "postgresql://localhost/app"})
    for kwargs, rule in (({"hooks": []}, "hooks: must be QueryHooks or None, got list"),
                         ({"log": {}}, "log: must be QueryLogSettings or None, got dict"),
                         ({"recover_after": -1}, "recover_after: must be None or a number"),
                         ({"recover_after": float("nan")}, "recover_after: must be None"),
                         ({"recover_after": True}, "recover_after: must be None")):
        with pytest.raises(ValidationError, match=rule):
            Database(made, **kwargs)  # type: ignore[arg-type]


async def test_an_optional_literal_names_its_values(db: Database) -> None:
    with pytest.raises(ValidationError, match="isolation: must be one of read committed, "
                                              "repeatable read, serializable, got 'x'"):
        db.transaction(isolation="x")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"isolation: must be .*None, got int"):
        db.transaction(isolation=3)  # type: ignore[arg-type]
