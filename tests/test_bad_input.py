"""Bad input to every public write: a typed error naming the field, and no row changed."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared_db.client import Database
from shared_db.errors import DataAccessError, ValidationError
from tests.conftest import Stores

MEGABYTE = "x" * 1_048_576
NUL = "a\x00b"
SQL = "'); DELETE FROM users; --"

Call = Callable[[Database, uuid.UUID], Awaitable[object]]

CASES: list[tuple[str, Call, str]] = [
    ("megabyte email", lambda db, u: db.users.create(
        email=MEGABYTE + "@x.io", password="password1", name="N", role="ADMIN"), "email"),
    ("NUL in email", lambda db, u: db.users.create(
        email="a\x00@x.io", password="password1", name="N", role="ADMIN"), "email"),
    ("NUL in name", lambda db, u: db.users.create(
        email="n@x.io", password="password1", name=NUL, role="ADMIN"), "name"),
    ("megabyte name", lambda db, u: db.users.create(
        email="n@x.io", password="password1", name=MEGABYTE, role="ADMIN"), "name"),
    ("password over 72 bytes", lambda db, u: db.users.create(
        email="n@x.io", password="é" * 40, name="N", role="ADMIN"), "password"),
    ("unknown role", lambda db, u: db.users.create(
        email="n@x.io", password="password1", name="N", role=SQL), "role"),
    ("role of another enum", lambda db, u: db.users.create(
        email="n@x.io", password="password1", name="N", role="pending"), "role"),
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
]


@pytest.fixture
async def user_id(db: Database) -> uuid.UUID:
    user = await db.users.create(email="owner@example.com", password="password1", name="O",
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
        user = await db.users.create(email=email, password="password1", name=name,
                                     role="VENDOR")
    except DataAccessError as error:
        assert isinstance(error, ValidationError) or "already exists" in str(error)
        assert stores.digest() == before
    else:
        assert user.email == email.strip().lower() and user.name == name
        assert "\x00" not in email and (await db.users.get(user.id)) == user
