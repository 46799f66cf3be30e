"""The guide's eager load in a fixed number of statements, whatever the number of users."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest

from shared_db.client import Database
from shared_db.records import UserWithRelations
from shared_db.sql import QueryEvent
from tests.conftest import Stores
from tests.factories import make_user


async def _users_with_payments(db: Database, stores: Stores, count: int,
                               payments: int) -> list:
    users = [await make_user(db, f"u{i}@example.com", name=f"U{i}") for i in range(count)]
    with (psycopg.connect(stores.url("profile"), autocommit=True) as profiles,
          psycopg.connect(stores.url("payments"), autocommit=True) as conn):
        for user in users:
            profiles.execute("INSERT INTO user_profiles (user_id, bio) VALUES (%s, %s)",
                             (user.id, f"bio of {user.email}"))
            # created_at spread so "newest" is well defined: payment k is k minutes old.
            conn.execute(
                "INSERT INTO payments (user_id, amount, status, type, created_at) "
                "SELECT %s, k, 'completed', 'payment', now() - k * interval '1 minute' "
                "FROM generate_series(1, %s) k", (user.id, payments))
    return users


async def test_one_user_with_profile_and_ten_newest_payments(
        db: Database, stores: Stores, statements: list[QueryEvent]) -> None:
    (user,) = await _users_with_payments(db, stores, 1, 15)
    statements.clear()
    loaded = await db.users.eager(user.id)
    assert isinstance(loaded, UserWithRelations)
    assert loaded.user.id == user.id and loaded.profile is not None
    assert loaded.profile.bio == "bio of u0@example.com"
    assert [p.amount for p in loaded.payments] == [Decimal(k) for k in range(1, 11)]
    assert len(statements) == (3 if stores.topology == "per-service" else 1)


@pytest.mark.parametrize("count", [1, 7, 40])
async def test_many_users_take_the_same_one_statement(
        db: Database, stores: Stores, statements: list[QueryEvent], count: int) -> None:
    users = await _users_with_payments(db, stores, count, 3)
    statements.clear()
    loaded = await db.users.eager_many([u.id for u in reversed(users)], payments=2)
    assert [item.user.id for item in loaded] == [u.id for u in reversed(users)]
    assert all(len(item.payments) == 2 and item.profile for item in loaded)
    assert all(p.user_id == item.user.id for item in loaded for p in item.payments)
    assert len(statements) == (3 if stores.topology == "per-service" else 1)


async def test_users_without_profile_or_payments(db: Database) -> None:
    user = await make_user(db, "bare@example.com", name="B", role="VENDOR")
    loaded = await db.users.eager(user.id)
    assert loaded is not None and loaded.profile is None and loaded.payments == ()
    assert await db.users.eager_many([]) == []
