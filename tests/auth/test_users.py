"""Users: registration, safe reads, passwords, soft delete, roles, and their audit rows."""

from __future__ import annotations

import logging
import uuid
from decimal import Decimal

import bcrypt
import psycopg
import pytest

from shared_db.client import Database
from shared_db.context import acting_as
from shared_db.enums import UserRole
from shared_db.errors import (
    DuplicateError,
    ForeignKeyError,
    NotFoundError,
    TransactionAbortedError,
    ValidationError,
)
from shared_db.records import UserRecord
from tests.conftest import Stores
from tests.factories import CORRECT_HORSE_HASH, make_user


async def _user(db: Database, email: str = "Jane@Example.COM", role: str = "CUSTOMER"):
    return await make_user(db, email, name="Jane", role=role, password_hash=CORRECT_HORSE_HASH)


async def test_create_normalises_email_and_hashes_with_cost_10(db: Database,
                                                             stores: Stores) -> None:
    user = await db.users.create(email="Jane@Example.COM", password="correct horse", name="Jane",
                                 role="CUSTOMER")
    assert user.email == "jane@example.com" and user.role is UserRole.CUSTOMER
    assert not user.email_verified and user.deleted_at is None
    with psycopg.connect(stores.url("auth")) as conn:
        (stored,) = conn.execute("SELECT password_hash FROM users WHERE id = %s",
                                 (user.id,)).fetchone()
    assert stored.startswith("$2b$10$") and bcrypt.checkpw(b"correct horse", stored.encode())


async def test_email_is_unique_whatever_the_case(db: Database, stores: Stores,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    await _user(db)
    before = stores.digest()
    caplog.set_level(logging.WARNING)
    with pytest.raises(DuplicateError) as caught:
        await _user(db, "JANE@example.com")
    with pytest.raises(TransactionAbortedError):  # caught inside: PostgreSQL aborted it
        async with db.transaction() as tx:
            with pytest.raises(DuplicateError):
                await _user(tx, "jane@EXAMPLE.com")  # type: ignore[arg-type]
    assert caught.value.field == "email"
    assert stores.digest() == before
    assert not caplog.records  # a refusal is an answer: nothing is logged as a warning


async def test_reads_never_carry_the_password_hash(db: Database) -> None:
    user = await _user(db)
    assert "password_hash" not in UserRecord._fields
    assert await db.users.get(user.id) == user
    assert await db.users.get_by_email("JANE@example.com") == user
    assert await db.users.get_fields(user.id, "email", "role") == {
        "email": "jane@example.com", "role": UserRole.CUSTOMER}
    named = await db.users.get_fields(user.id, "password_hash")
    assert named is not None and named["password_hash"].startswith("$2b$10$")
    with pytest.raises(ValidationError, match="'secret' is not a column of users"):
        await db.users.get_fields(user.id, "secret")


async def test_verify_password(db: Database) -> None:
    user = await _user(db)
    assert await db.users.verify_password("jane@example.com", "correct horse") == user
    assert await db.users.verify_password("jane@example.com", "wrong horse") is None
    assert await db.users.verify_password("nobody@example.com", "correct horse") is None


async def test_soft_delete_hides_everywhere_until_restored(db: Database) -> None:
    user = await _user(db)
    payment = await db.payments.create(user.id, Decimal("5.00"), type="payment")
    deleted = await db.users.soft_delete(user.id)
    assert deleted.deleted_at is not None
    assert await db.users.get(user.id) is None
    assert await db.users.get_by_email(user.email) is None
    assert await db.users.eager(user.id) is None
    assert await db.users.verify_password(user.email, "correct horse") is None
    assert (await db.users.get(user.id, include_deleted=True)) == deleted
    with pytest.raises(NotFoundError):
        await db.payments.create(user.id, Decimal("1.00"), type="payment")
    with pytest.raises(NotFoundError):
        await db.tokens.issue(user.id)
    with pytest.raises(NotFoundError, match="already deleted"):
        await db.users.soft_delete(user.id)
    # The email stays taken while the user is only soft-deleted.
    with pytest.raises(DuplicateError):
        await _user(db)
    restored = await db.users.restore(user.id)
    assert restored.deleted_at is None and await db.users.get(user.id) == restored
    assert (await db.payments.get(payment.id)) == payment


async def test_writes_are_audited_with_the_actor(db: Database) -> None:
    admin = await _user(db, "admin@example.com", "ADMIN")
    with acting_as(admin.id, "10.0.0.1", "pytest/1.0"):
        user = await _user(db)
        await db.users.set_role(user.id, "VENDOR")
        await db.users.soft_delete(user.id)
        await db.users.restore(user.id)
    rows = await db.audit.for_resource("user", user.id)
    assert [r.action for r in rows] == [
        "user.created", "user.role_changed", "user.soft_deleted", "user.restored"]
    assert {(r.user_id, r.ip_address, r.user_agent) for r in rows} == {
        (admin.id, "10.0.0.1", "pytest/1.0")}
    assert rows[1].details == {"old": "CUSTOMER", "new": "VENDOR"}
    own = await db.audit.for_resource("user", admin.id)
    assert [(r.action, r.user_id) for r in own] == [("user.created", admin.id)]


async def test_a_failed_audit_undoes_the_write(db: Database, stores: Stores) -> None:
    with psycopg.connect(stores.url("admin"), autocommit=True) as conn:
        conn.execute("ALTER TABLE audit_logs ADD CONSTRAINT no_blocked_agent "
                     "CHECK (user_agent IS DISTINCT FROM 'blocked')")
    try:
        before = stores.digest()
        with acting_as(user_agent="blocked"), pytest.raises(ValidationError):
            await _user(db)
        assert stores.digest() == before
    finally:
        with psycopg.connect(stores.url("admin"), autocommit=True) as conn:
            conn.execute("ALTER TABLE audit_logs DROP CONSTRAINT no_blocked_agent")


async def test_request_metadata_never_blocks_a_write(db: Database, stores: Stores) -> None:
    agent = "Mozilla/5.0 " + "x" * 5000 + "\x00\ud800"
    with acting_as(ip_address="2001:db8::1%" + "eth0" * 50, user_agent=agent) as actor:
        user = await _user(db)
    assert actor.user_agent is not None and actor.ip_address is not None
    assert len(actor.user_agent) == 1000 and actor.user_agent.endswith("\u2026")
    assert actor.user_agent.startswith("Mozilla/5.0 xxx")
    assert len(actor.ip_address) == 100 and actor.ip_address.endswith("\u2026")
    (row,) = await db.audit.for_resource("user", user.id)
    assert (row.ip_address, row.user_agent) == (actor.ip_address, actor.user_agent)
    with acting_as(user_agent="curl/8\x00\udc80") as actor:
        assert actor.user_agent == "curl/8\ufffd\ufffd"
    with pytest.raises(ValidationError) as caught:
        acting_as(actor_id="not-a-uuid").__enter__()  # type: ignore[arg-type]
    assert caught.value.field == "actor_id"


async def test_hard_delete_cascades_but_payments_block_it(db: Database) -> None:
    user = await _user(db)
    await db.profiles.create(user.id, bio="hi")
    await db.tokens.issue(user.id)
    payment = await db.payments.create(user.id, Decimal("1.00"), type="payment")
    with pytest.raises(ForeignKeyError, match="payments_user_id_fkey"):
        await db.users.delete(user.id)
    assert await db.users.get(user.id) is not None
    async with db.transaction() as tx, tx.executor("payments") as ex:
        await ex.connection.execute("DELETE FROM payments WHERE id = %s", (payment.id,))
    await db.users.delete(user.id)
    assert await db.profiles.get(user.id) is None
    with pytest.raises(NotFoundError):
        await db.users.delete(user.id)


async def test_unknown_ids_and_roles(db: Database) -> None:
    missing = uuid.uuid4()
    assert await db.users.get(missing) is None
    with pytest.raises(NotFoundError):
        await db.users.get_one(missing)
    with pytest.raises(NotFoundError):
        await db.users.set_role(missing, "ADMIN")
    user = await _user(db)
    with pytest.raises(ValidationError, match="role: must be one of ADMIN, CUSTOMER, VENDOR"):
        await db.users.set_role(user.id, "ROOT")


async def test_create_with_an_existing_hash(db: Database) -> None:
    from shared_db.passwords import hash_password

    hashed = hash_password("imported-secret")
    user = await db.users.create(email="imp@example.com", password_hash=hashed, name="I",
                                 role="VENDOR")
    assert await db.users.verify_password("imp@example.com", "imported-secret") == user
    for kwargs in ({}, {"password": "password1", "password_hash": hashed}):
        with pytest.raises(ValidationError, match="password: give either"):
            await db.users.create(email="x@example.com", name="X", role="VENDOR", **kwargs)


async def test_setting_the_role_a_user_has_writes_nothing(db: Database) -> None:
    user = await _user(db, "same-role@example.com", "VENDOR")
    before = await db.audit.for_resource("user", user.id)
    assert await db.users.set_role(user.id, "VENDOR") == user  # updated_at untouched
    assert await db.audit.for_resource("user", user.id) == before
    changed = await db.users.set_role(user.id, UserRole.ADMIN)
    assert changed.role is UserRole.ADMIN
    assert (await db.audit.for_resource("user", user.id))[-1].details == {
        "old": "VENDOR", "new": "ADMIN"}
