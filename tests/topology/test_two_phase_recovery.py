"""Two-phase commit: recovery settles a transaction with all of its parts.

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

from shared_db.client import Database
from shared_db.config import load_settings
from shared_db.profile.service import create_user_with_profile
from shared_db.sql import QueryEvent
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


if __name__ == "__main__":
    asyncio.run(_slow_coordinator())
