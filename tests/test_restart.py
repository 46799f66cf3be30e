"""A server restart under a running client: typed errors for what was in flight, then the
same client carries on (dead pooled connections are replaced), and no committed write is lost."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import bindparam, func, select

from shared_db.client import Database
from shared_db.config import load_settings
from shared_db.errors import DatabaseUnavailableError
from shared_db.ops import devserver, migrate
from shared_db.ops.targets import resolve_targets
from shared_db.sql import Query

SLEEP = Query.build("test.sleep", select(func.pg_sleep(bindparam("seconds"))))


@pytest.fixture
def server(tmp_path: Path):
    home = tmp_path / "server"
    url = devserver.start(home)
    settings = load_settings({"DATABASE_URL": url + "?connection_limit=4"})
    migrate.deploy(resolve_targets(settings)[0], settings.migrations_dir)
    yield home, settings
    devserver.stop(home)


async def test_the_client_survives_a_restart(server) -> None:
    home, settings = server
    async with Database(settings) as db:
        user = await db.users.create(email="r@example.com", password="password1", name="R",
                                     role="CUSTOMER")
        before = [await db.payments.create(user.id, Decimal(n), type="payment")
                  for n in range(1, 6)]
        await asyncio.gather(*(db.users.get(user.id) for _ in range(8)))  # every connection

        async def in_flight() -> None:
            async with db.transaction() as tx, tx.executor("auth") as ex:
                await ex.scalar(SLEEP, {"seconds": 30})

        task = asyncio.create_task(in_flight())
        await asyncio.sleep(0.3)
        await asyncio.to_thread(devserver.stop, home)
        with pytest.raises(DatabaseUnavailableError):
            await asyncio.wait_for(task, 20)  # typed, and no hang
        await asyncio.to_thread(devserver.start, home)

        # The pool still holds connections to the old server; callers never notice.
        assert all(await asyncio.gather(*(db.users.get(user.id) for _ in range(8))))
        after = await db.payments.create(user.id, Decimal("9.00"), type="payment")
        async with db.transaction() as tx:
            await tx.config.set("after.restart", True)
        page = await db.payments.page(user.id, limit=100)
        assert {p.id for p in page.items} == {p.id for p in [*before, after]}
        assert await db.config.value("after.restart") is True
