"""Refresh tokens: stored hashed, rotated atomically, revoked, purged."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta

import psycopg
import pytest

from shared_db.client import Database
from shared_db.errors import NotFoundError, TokenReusedError, ValidationError
from tests.conftest import Stores
from tests.factories import make_user


@pytest.fixture
async def user(db: Database):
    return await make_user(db, "t@example.com", name="T")


async def test_the_table_holds_a_hash_never_the_token(db: Database, user,
                                                      stores: Stores) -> None:
    issued = await db.tokens.issue(user.id)
    with psycopg.connect(stores.url("auth")) as conn:
        stored = [r[0] for r in conn.execute("SELECT token FROM refresh_tokens")]
    assert stored == [hashlib.sha256(issued.token.encode()).hexdigest()]
    assert issued.token not in stored
    assert await db.tokens.find(issued.token) == issued.record
    assert await db.tokens.find("not-a-token") is None


async def test_rotate_replaces_the_token_and_moves_sessions(db: Database, user) -> None:
    issued = await db.tokens.issue(user.id)
    device = await db.devices.register(user.id, "phone-1")
    session = await db.sessions.open(user.id, device.id, refresh_token_id=issued.record.id)
    rotated = await db.tokens.rotate(issued.token)
    assert rotated.token != issued.token and rotated.record.user_id == user.id
    assert await db.tokens.find(issued.token) is None
    assert await db.tokens.find(rotated.token) == rotated.record
    (active,) = await db.sessions.active(user.id)
    assert active.id == session.id and active.refresh_token_id == rotated.record.id
    with pytest.raises(NotFoundError, match="unknown"):
        await db.tokens.rotate("never-issued")


async def test_a_replayed_token_revokes_the_family(db: Database, user,
                                                   stores: Stores) -> None:
    first = await db.tokens.issue(user.id)
    other_device = await db.tokens.issue(user.id)
    device = await db.devices.register(user.id, "phone-1")
    await db.sessions.open(user.id, device.id, refresh_token_id=first.record.id)
    second = await db.tokens.rotate(first.token)
    with pytest.raises(TokenReusedError, match="revoked"):
        await db.tokens.rotate(first.token)  # the stolen copy comes back
    for token in (first, second, other_device):
        assert await db.tokens.find(token.token) is None
    assert await db.sessions.active(user.id) == []
    (audit,) = (await db.audit.for_resource("user", user.id))[-1:]
    assert audit.action == "auth.refresh_token_reused"
    with psycopg.connect(stores.url("auth")) as conn:
        assert conn.execute("SELECT count(*) FROM refresh_tokens").fetchone() == (0,)


async def test_concurrent_rotations_of_one_token_one_wins(db: Database, user) -> None:
    issued = await db.tokens.issue(user.id)
    results = await asyncio.gather(db.tokens.rotate(issued.token),
                                   db.tokens.rotate(issued.token), return_exceptions=True)
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1 and len(losers) == 1
    # The second presentation of one token is a reuse: the family, winner's token included, goes.
    assert isinstance(losers[0], TokenReusedError)
    assert await db.tokens.find(winners[0].token) is None


async def test_revoke_revoke_all_and_purge(db: Database, user, stores: Stores) -> None:
    first, second, third = [await db.tokens.issue(user.id) for _ in range(3)]
    assert await db.tokens.revoke(first.token) is True
    assert await db.tokens.revoke(first.token) is False
    assert await db.tokens.revoke_all(user.id) == 2
    assert await db.tokens.find(second.token) is None and await db.tokens.find(third.token) is None
    live = await db.tokens.issue(user.id)
    short = await db.tokens.issue(user.id, ttl=timedelta(seconds=1))
    with psycopg.connect(stores.url("auth"), autocommit=True) as conn:
        conn.execute("UPDATE refresh_tokens SET expires_at = now() - interval '1 second' "
                     "WHERE id = %s", (short.record.id,))
    assert await db.tokens.find(short.token) is None
    with pytest.raises(NotFoundError):
        await db.tokens.rotate(short.token)
    assert await db.tokens.purge_expired() == 1
    rotated = await db.tokens.rotate(live.token)
    assert await db.tokens.purge_expired() == 1  # the used one, kept only for reuse detection
    live = rotated
    assert await db.tokens.find(live.token) is not None


@pytest.mark.parametrize("ttl", [timedelta(0), timedelta(seconds=-5), timedelta(days=4000), 30])
async def test_bad_ttl(db: Database, user, ttl) -> None:
    with pytest.raises(ValidationError, match="ttl"):
        await db.tokens.issue(user.id, ttl=ttl)
