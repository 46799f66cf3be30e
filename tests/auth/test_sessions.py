"""Devices and sessions (the guide's POC-3 session management)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import psycopg
import pytest

from shared_db.client import Database
from shared_db.errors import ConflictError, NotFoundError
from tests.conftest import Stores
from tests.factories import make_user


@pytest.fixture
async def users(db: Database):
    return [await make_user(db, f"s{i}@example.com", name="S") for i in range(2)]


async def test_register_then_touch_a_device(db: Database, users) -> None:
    alice, _ = users
    device = await db.devices.register(alice.id, "phone-1", device_name="Pixel",
                                       device_type="mobile")
    await asyncio.sleep(0.01)
    again = await db.devices.register(alice.id, "phone-1")
    assert again.id == device.id and again.device_name == "Pixel"
    assert again.last_active_at > device.last_active_at
    touched = await db.devices.touch(device.id)
    assert touched.last_active_at >= again.last_active_at
    assert [d.id for d in await db.devices.list_for_user(alice.id)] == [device.id]


async def test_a_device_id_belongs_to_one_user(db: Database, users) -> None:
    alice, bob = users
    await db.devices.register(alice.id, "shared-tablet")
    with pytest.raises(ConflictError, match="another user"):
        await db.devices.register(bob.id, "shared-tablet")
    await db.users.soft_delete(bob.id)
    with pytest.raises(NotFoundError):
        await db.devices.register(bob.id, "bobs-phone")


async def test_sessions_open_list_end(db: Database, users, stores: Stores) -> None:
    alice, bob = users
    phone = await db.devices.register(alice.id, "phone")
    laptop = await db.devices.register(alice.id, "laptop")
    current = await db.sessions.open(alice.id, phone.id, ip_address="10.0.0.2",
                                     user_agent="app/2")
    other = await db.sessions.open(alice.id, laptop.id)
    stale = await db.sessions.open(alice.id, laptop.id, ttl=timedelta(minutes=1))
    with psycopg.connect(stores.url("auth"), autocommit=True) as conn:
        conn.execute("UPDATE sessions SET expires_at = now() - interval '1 minute' "
                     "WHERE id = %s", (stale.id,))
    assert {s.id for s in await db.sessions.active(alice.id)} == {current.id, other.id}
    with pytest.raises(NotFoundError):
        await db.sessions.open(bob.id, phone.id)  # not bob's device
    assert await db.sessions.end_others(alice.id, keep=current.id) == 2
    assert [s.id for s in await db.sessions.active(alice.id)] == [current.id]
    assert await db.sessions.end(current.id) is True
    assert await db.sessions.end(current.id) is False
    assert await db.sessions.purge_expired() == 0


async def test_purge_expired_sessions(db: Database, users, stores: Stores) -> None:
    alice, _ = users
    device = await db.devices.register(alice.id, "phone")
    keep = await db.sessions.open(alice.id, device.id)
    gone = await db.sessions.open(alice.id, device.id)
    with psycopg.connect(stores.url("auth"), autocommit=True) as conn:
        conn.execute("UPDATE sessions SET expires_at = now() - interval '1 day' WHERE id = %s",
                     (gone.id,))
    assert await db.sessions.purge_expired() == 1
    assert [s.id for s in await db.sessions.active(alice.id)] == [keep.id]


async def test_a_soft_deleted_users_token_and_sessions_are_not_found(db: Database,
                                                                     users) -> None:
    alice, _ = users
    phone = await db.devices.register(alice.id, "phone")
    issued = await db.tokens.issue(alice.id)
    await db.sessions.open(alice.id, phone.id, refresh_token_id=issued.record.id)
    assert await db.tokens.find(issued.token) is not None
    await db.users.soft_delete(alice.id)
    assert await db.tokens.find(issued.token) is None  # a deleted account is not let in
    assert await db.sessions.active(alice.id) == []
    await db.users.restore(alice.id)
    assert await db.tokens.find(issued.token) is not None
    assert len(await db.sessions.active(alice.id)) == 1


async def test_a_session_names_only_its_own_users_refresh_token(db: Database, users) -> None:
    alice, bob = users
    phone = await db.devices.register(alice.id, "alice-phone")
    bobs = await db.tokens.issue(bob.id)
    with pytest.raises(NotFoundError, match="is not theirs"):
        await db.sessions.open(alice.id, phone.id, refresh_token_id=bobs.record.id)
    assert await db.sessions.active(alice.id) == []
    alices = await db.tokens.issue(alice.id)
    opened = await db.sessions.open(alice.id, phone.id, refresh_token_id=alices.record.id)
    assert opened.refresh_token_id == alices.record.id
