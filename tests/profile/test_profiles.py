"""Profiles, and a user created with their profile in one transaction (guide 6.1)."""

from __future__ import annotations

import uuid

import pytest

from shared_db.client import Database
from shared_db.errors import DuplicateError, NotFoundError, ValidationError
from shared_db.profile.service import create_user_with_profile
from tests.conftest import Stores
from tests.factories import PASSWORD_HASH


async def test_user_and_profile_together(db: Database) -> None:
    user, profile = await create_user_with_profile(
        db, email="new@example.com", password_hash=PASSWORD_HASH, name="New", role="CUSTOMER",
        profile={"preferences": {}, "bio": "hello"})
    assert profile.user_id == user.id and profile.preferences == {}
    assert await db.profiles.get(user.id) == profile


async def test_a_failing_profile_leaves_no_user(db: Database, stores: Stores) -> None:
    before = stores.digest()
    with pytest.raises(ValidationError, match="preferences"):
        await create_user_with_profile(db, email="new@example.com", password_hash=PASSWORD_HASH,
                                       name="New", role="CUSTOMER",
                                       profile={"preferences": {"bad": float("nan")}})
    assert stores.digest() == before
    with pytest.raises(ValidationError, match="shoe_size"):
        await create_user_with_profile(db, email="new@example.com", password_hash=PASSWORD_HASH,
                                       name="New", role="CUSTOMER", profile={"shoe_size": 44})
    assert stores.digest() == before


async def test_inside_a_caller_transaction(db: Database, stores: Stores) -> None:
    before = stores.digest()
    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            await create_user_with_profile(tx, email="x@example.com", password_hash=PASSWORD_HASH,
                                           name="X", role="VENDOR")
            raise RuntimeError("the caller changes its mind")
    assert stores.digest() == before


async def test_get_and_update(db: Database) -> None:
    user, _ = await create_user_with_profile(db, email="u@example.com", password_hash=PASSWORD_HASH,
                                             name="U", role="CUSTOMER")
    updated = await db.profiles.update(user.id, phone="+1 555 0100",
                                       preferences={"theme": "dark", "langs": ["en", "fr"]})
    assert updated.phone == "+1 555 0100" and updated.preferences == {
        "theme": "dark", "langs": ["en", "fr"]}
    again = await db.profiles.update(user.id, bio="Robert'); DROP TABLE users;--")
    assert again.bio == "Robert'); DROP TABLE users;--" and again.phone == "+1 555 0100"
    assert again.updated_at >= updated.updated_at
    with pytest.raises(ValidationError, match="phone: must be at most 50"):
        await db.profiles.update(user.id, phone="1" * 51)
    with pytest.raises(ValidationError, match="changes"):
        await db.profiles.update(user.id)


async def test_profile_rules(db: Database) -> None:
    with pytest.raises(NotFoundError):
        await db.profiles.create(uuid.uuid4())
    with pytest.raises(NotFoundError, match="has no profile"):
        await db.profiles.update(uuid.uuid4(), bio="x")
    user, _ = await create_user_with_profile(db, email="d@example.com", password_hash=PASSWORD_HASH,
                                             name="D", role="CUSTOMER")
    with pytest.raises(DuplicateError) as caught:
        await db.profiles.create(user.id)
    assert caught.value.field == "user_id"
