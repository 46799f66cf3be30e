"""Two-phase commit: recovery settles a transaction with all of its parts, and a part the
server refuses to prepare (or loses after preparing) leaves nothing prepared behind.

Run as a program, this module is a service that pauses after its first PREPARE and dies
(SIGKILL) after its last, so its parts are of different ages when recovery looks at them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid

import psycopg
import pytest

from shared_db.client import Database, Transaction
from shared_db.config import load_settings
from shared_db.errors import DataAccessError, DatabaseUnavailableError
from shared_db.profile.service import create_user_with_profile
from shared_db.sql import Query, QueryEvent
from tests.conftest import Stores
from tests.factories import PASSWORD_HASH
from tests.topology.test_two_phase import NOTHING, _prepared, _rows

PAUSE = 2.0


async def _slow_coordinator() -> None:
    prepared = 0

    def pause_then_die(event: QueryEvent) -> None:
        nonlocal prepared
        if event.name == "twophase.prepare" and event.error is None:
            prepared += 1
            if prepared == 1:
                time.sleep(PAUSE)
            elif prepared == 3:
                os.kill(os.getpid(), signal.SIGKILL)

    async with Database(load_settings(), recover_after=None) as db:
        db.hooks.listeners.append(pause_then_die)
        await create_user_with_profile(db, email="slow@example.com", name="S", role="CUSTOMER",
                                       password_hash=PASSWORD_HASH)


async def test_parts_of_different_ages_are_settled_together(private_stores: Stores) -> None:
    """Part 0 is past the age and the later parts are not: rolling back part 0 alone made the
    next recovery commit the user and its profile without their audit row."""
    env = {**os.environ, **{f"{s.upper()}_DATABASE_URL": u for s, u in private_stores.urls.items()},
           "SHARED_DB_TOPOLOGY": "per-service"}
    child = subprocess.run([sys.executable, "-m", __name__], env=env, capture_output=True,
                           text=True, timeout=60)
    assert child.returncode == -9, child.stderr
    assert _prepared(private_stores) == {"auth": 1, "admin": 1, "profile": 1}
    async with Database(private_stores.settings(), recover_after=None) as db:
        (settled,) = await db.recover(older_than=PAUSE / 2)
        assert (settled.outcome, settled.parts) == ("rolled back", 3)
        assert await db.recover(older_than=0) == []
        assert await db.users.get_by_email("slow@example.com") is None
    assert _rows(private_stores) == NOTHING and _prepared(private_stores) == NOTHING


READ = Query("test.read_config", "SELECT value FROM system_config WHERE key = %(key)s")
WRITE = Query("test.touch_config", "UPDATE system_config SET description = 'seen' "
              "WHERE key = %(key)s")


async def test_a_prepare_refused_for_serialization_is_retried(private_stores: Stores) -> None:
    """Write skew across two serializable transactions: the second PREPARE is refused with
    40001, and ``db.run`` runs it again (it raised DataAccessError about a prepared
    transaction that does not exist: its rollback asked for the part the server refused)."""
    async with Database(private_stores.settings(), recover_after=None) as db:
        user, _ = await create_user_with_profile(db, email="skew@example.com", name="S",
                                                 role="CUSTOMER", password_hash=PASSWORD_HASH)
        await db.config.set("a", 1)
        await db.config.set("b", 1)
        wrote = [asyncio.Event(), asyncio.Event()]
        attempts = [0, 0]
        refused: list[str] = []
        db.hooks.listeners.append(lambda e: refused.extend(
            [e.name] if e.sqlstate == "40001" else []))

        async def skew(i: int, read: str, write: str) -> int:
            async def work(tx: Transaction) -> int:
                attempts[i] += 1
                await tx.users.get(user.id)  # a second database: two-phase
                async with tx.executor("admin") as ex:
                    await ex.execute(READ, {"key": read})
                    await ex.execute(WRITE, {"key": write})
                if attempts[i] == 1:
                    wrote[i].set()
                    await wrote[1 - i].wait()
                    await asyncio.sleep(0.2 * i)  # 0 prepares first
                return i

            return await db.run(work, isolation="serializable", retries=2)

        assert await asyncio.gather(skew(0, "a", "b"), skew(1, "b", "a")) == [0, 1]
        assert refused == ["twophase.prepare"] and sorted(attempts) == [1, 2]
    assert _prepared(private_stores) == NOTHING


TEMP = Query("test.temp_table", "CREATE TEMP TABLE scratch (x int)")


async def test_a_refused_last_prepare_leaves_nothing_prepared(private_stores: Stores) -> None:
    """auth, the last part, cannot be prepared: the error is the server's, and the parts
    prepared before it are rolled back at once instead of being left to recovery."""
    async with Database(private_stores.settings(), recover_after=None) as db:
        user, _ = await create_user_with_profile(db, email="t@example.com", name="T",
                                                 role="CUSTOMER", password_hash=PASSWORD_HASH)
        before = _rows(private_stores)

        async def work(tx: Transaction) -> None:
            await tx.profiles.update(user.id, bio="changed")
            await tx.config.set("k", 2)
            async with tx.executor("auth") as ex:
                await ex.execute(TEMP, {})

        with pytest.raises(DataAccessError, match="0A000"):
            await db.run(work)
        assert _prepared(private_stores) == NOTHING
        loaded = await db.users.eager(user.id)
        assert loaded is not None and loaded.profile is not None
        assert loaded.profile.bio is None and await db.config.get("k") is None
    assert _rows(private_stores) == before


def _end_every_session(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        return len(conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
            "current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        ).fetchall())


async def test_sessions_ended_mid_prepare_leave_nothing_prepared(
        private_stores: Stores) -> None:
    """After part 1 is prepared, the server ends every session of profile and auth (as a
    restart would): part 2's PREPARE fails, part 1's ROLLBACK PREPARED is lost with its
    session and is made on a new connection; part 0 is rolled back too."""
    ended: list[int] = []

    def end_sessions(event: QueryEvent) -> None:
        if event.name == "twophase.prepare" and ":1:3'" in event.sql and event.error is None:
            ended.extend(_end_every_session(private_stores.url(s)) for s in ("profile", "auth"))

    async with Database(private_stores.settings(), recover_after=None) as db:
        db.hooks.listeners.append(end_sessions)
        with pytest.raises(DatabaseUnavailableError) as caught:
            await create_user_with_profile(db, email=f"{uuid.uuid4().hex}@example.com",
                                           name="E", role="CUSTOMER",
                                           password_hash=PASSWORD_HASH)
        assert type(caught.value) is DatabaseUnavailableError and all(ended)
    assert _rows(private_stores) == NOTHING and _prepared(private_stores) == NOTHING


if __name__ == "__main__":
    asyncio.run(_slow_coordinator())
