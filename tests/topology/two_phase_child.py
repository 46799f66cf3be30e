"""A service process that dies (SIGKILL) right after its N-th statement named NAME, while
creating a user with a profile across the per-service databases of its environment."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from shared_db.client import Database
from shared_db.config import load_settings
from shared_db.profile.service import create_user_with_profile
from shared_db.sql import QueryEvent
from tests.factories import PASSWORD_HASH


async def main(name: str, nth: int) -> None:
    seen = 0

    def die_at(event: QueryEvent) -> None:
        nonlocal seen
        if event.name == name and event.error is None:
            seen += 1
            if seen == nth:
                os.kill(os.getpid(), signal.SIGKILL)

    async with Database(load_settings()) as db:
        db.hooks.listeners.append(die_at)
        await create_user_with_profile(db, email="half@example.com", name="Half",
                                       role="CUSTOMER", password_hash=PASSWORD_HASH,
                                       profile={"bio": "all or nothing"})


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
