"""``create_many`` with skip-duplicates (guide 6.1): counts, batching, all-or-nothing."""

from __future__ import annotations

import psycopg
import pytest

from shared_db.auth.repository import NewUser
from shared_db.client import Database
from shared_db.context import acting_as
from shared_db.errors import DuplicateError, ValidationError
from shared_db.sql import QueryEvent
from tests.conftest import Stores
from tests.factories import PASSWORD_HASH as HASH


def _users(start: int, stop: int) -> list[NewUser]:
    return [NewUser(email=f"bulk{i}@example.com", name=f"Bulk {i}", role="CUSTOMER",
                    password_hash=HASH) for i in range(start, stop)]


async def test_ten_thousand_rows_in_one_copy_and_one_insert(
        db: Database, stores: Stores, statements: list[QueryEvent]) -> None:
    assert await db.users.create_many(_users(0, 10_000)) == 10_000
    if stores.topology == "per-service":  # users, then their audit rows in admin's database
        expected = ["users.create_many.arrays", "users.create_many.audit"]
    else:  # the audit rows are written by the INSERT's data-modifying CTE
        expected = ["users.create_many.stage", "users.create_many.copy", "users.create_many"]
    assert [s.name for s in statements if not s.name.startswith("twophase")] == expected
    with psycopg.connect(stores.url("auth")) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (10_000,)


async def test_each_inserted_user_is_audited(db: Database, stores: Stores) -> None:
    admin = await db.users.create(email="boss@example.com", name="B", role="ADMIN",
                                  password_hash=HASH)
    await db.users.create_many(_users(0, 3))
    with acting_as(admin.id, "198.51.100.7", "importer/2"):
        assert await db.users.create_many(_users(2, 5)) == 2  # bulk2 exists: skipped
    with psycopg.connect(stores.url("auth")) as conn:
        ids = dict(conn.execute("SELECT email, id FROM users").fetchall())
    with psycopg.connect(stores.url("admin")) as conn:
        rows = conn.execute("SELECT user_id, resource_type, resource_id, details, ip_address, "
                            "user_agent FROM audit_logs WHERE action = 'user.created' "
                            "AND resource_id <> %s", (str(admin.id),)).fetchall()
    by_email = {r[3]["email"]: r for r in rows}
    assert sorted(by_email) == [f"bulk{i}@example.com" for i in range(5)]
    for i in range(5):
        user_id = ids[f"bulk{i}@example.com"]
        actor, ip, agent = (admin.id, "198.51.100.7", "importer/2") if i >= 3 else (
            user_id, None, None)
        assert by_email[f"bulk{i}@example.com"] == (
            actor, "user", str(user_id), {"email": f"bulk{i}@example.com", "role": "CUSTOMER"},
            ip, agent)


async def test_skip_duplicates_counts_only_new_rows(db: Database) -> None:
    assert await db.users.create_many(_users(0, 100)) == 100
    overlapping = [*_users(50, 150), NewUser(email="BULK3@example.com", name="Dup",
                                             role="VENDOR", password_hash=HASH)]
    assert await db.users.create_many(overlapping) == 50
    assert await db.users.create_many([]) == 0
    inside = _users(200, 203)
    assert await db.users.create_many([*inside, *inside]) == 3  # repeats within one batch too


async def test_without_skip_a_duplicate_writes_nothing(db: Database,
                                                       stores: Stores) -> None:
    await db.users.create_many(_users(0, 10))
    before = stores.digest()
    with pytest.raises(DuplicateError) as caught:
        await db.users.create_many(_users(5, 20), skip_duplicates=False)
    assert caught.value.field == "email"
    assert stores.digest() == before


@pytest.mark.parametrize(("bad", "field"), [
    (NewUser(email="not-an-email", name="X", role="CUSTOMER", password_hash=HASH),
     "users[3].email"),
    (NewUser(email="x@example.com", name="X", role="GOD", password_hash=HASH), "users[3].role"),
    (NewUser(email="x@example.com", name="", role="ADMIN", password_hash=HASH), "users[3].name"),
    (NewUser(email="x@example.com", name="X", role="ADMIN"), "users[3]"),
    (NewUser(email="x@example.com", name="X", role="ADMIN", password="short"),
     "users[3].password"),
])
async def test_one_bad_row_rejects_the_batch(db: Database, stores: Stores,
                                             bad: NewUser, field: str) -> None:
    before = stores.digest()
    with pytest.raises(ValidationError) as caught:
        await db.users.create_many([*_users(0, 3), bad, *_users(3, 6)])
    assert caught.value.field == field
    assert stores.digest() == before


async def test_plain_passwords_are_hashed(db: Database) -> None:
    assert await db.users.create_many([NewUser(email="pw@example.com", name="P", role="ADMIN",
                                               password="password1")]) == 1
    assert await db.users.verify_password("pw@example.com", "password1") is not None


async def test_a_refused_audit_row_undoes_the_batch(db: Database, stores: Stores) -> None:
    with psycopg.connect(stores.url("admin"), autocommit=True) as conn:
        conn.execute("ALTER TABLE audit_logs ADD CONSTRAINT no_bulk3 "
                     "CHECK (details->>'email' IS DISTINCT FROM 'bulk3@example.com')")
    try:
        before = stores.digest()
        with pytest.raises(ValidationError):  # the users and their audit rows, all or nothing
            await db.users.create_many(_users(0, 5))
        assert stores.digest() == before
    finally:
        with psycopg.connect(stores.url("admin"), autocommit=True) as conn:
            conn.execute("ALTER TABLE audit_logs DROP CONSTRAINT no_bulk3")
