"""A server restart under a running client: typed errors for what was in flight, then the
same client carries on (dead pooled connections are replaced), and no committed write is lost."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import bindparam, func, select

from shared_db import devserver
from shared_db.client import Database
from shared_db.config import load_settings
from shared_db.errors import DatabaseUnavailableError, PoolTimeoutError
from shared_db.ops import migrate
from shared_db.ops.targets import resolve_targets
from shared_db.sql import Query
from tests.factories import PASSWORD_HASH

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
        user = await db.users.create(email="r@example.com", password_hash=PASSWORD_HASH, name="R",
                                     role="CUSTOMER")
        before = [await db.payments.create(user.id, Decimal(n), type="payment")
                  for n in range(1, 6)]
        await asyncio.gather(*(db.users.get(user.id) for _ in range(8)))  # every connection

        async def in_flight() -> None:
            async with db.transaction() as tx:
                await tx.config.set("in.flight", 1)  # never committed
                async with tx.executor("auth") as ex:
                    await ex.scalar(SLEEP, {"seconds": 30})

        committed: list[object] = []
        failed = 0
        stop = asyncio.Event()

        async def worker() -> None:
            nonlocal failed
            while not stop.is_set():
                try:
                    committed.append(await db.payments.create(user.id, Decimal(1),
                                                              type="payment"))
                except (DatabaseUnavailableError, PoolTimeoutError):
                    failed += 1  # typed; the outcome of that one insert is unknown
                    await asyncio.sleep(0.05)

        task = asyncio.create_task(in_flight())
        workers = [asyncio.create_task(worker()) for _ in range(3)]
        await asyncio.sleep(0.3)
        await asyncio.to_thread(devserver.stop, home)
        with pytest.raises(DatabaseUnavailableError):
            await asyncio.wait_for(task, 20)  # typed, and no hang
        await asyncio.to_thread(devserver.start, home)
        await asyncio.sleep(0.5)  # the workers carry on against the restarted server
        stop.set()
        await asyncio.gather(*workers)
        # While the server is down, callers wait for a connection (up to pool_timeout).
        assert committed
        assert await db.config.get("in.flight") is None

        # The pool still holds connections to the old server; callers never notice.
        assert all(await asyncio.gather(*(db.users.get(user.id) for _ in range(8))))
        after = await db.payments.create(user.id, Decimal("9.00"), type="payment")
        async with db.transaction() as tx:
            await tx.config.set("after.restart", True)
        with psycopg.connect(settings.connection().libpq_url()) as conn:
            stored = {r[0] for r in conn.execute("SELECT id FROM payments")}
        wanted = {p.id for p in [*before, after, *committed]}  # type: ignore[attr-defined]
        assert wanted <= stored  # no committed write lost
        assert len(stored) <= len(wanted) + failed  # nothing appeared that was not attempted
        assert await db.config.value("after.restart") is True


async def test_recover_right_after_a_restart(server) -> None:
    home, settings = server
    async with Database(settings) as db:
        await asyncio.gather(*(db.users.get_by_email("x@example.com") for _ in range(8)))
        await asyncio.to_thread(devserver.stop, home)
        await asyncio.to_thread(devserver.start, home)
        # Every pooled connection is dead: recover checks out a live one, as calls do.
        assert await db.recover(older_than=0) == []


async def test_a_server_down_past_pool_timeout_is_unavailable_not_a_full_pool(server) -> None:
    home, settings = server
    url = settings.connection().libpq_url()
    limits = "connection_limit=2&pool_timeout=2&connect_timeout=1"
    quick = load_settings({"DATABASE_URL": f"{url}{'&' if '?' in url else '?'}{limits}"})
    async with Database(quick) as db:
        await asyncio.gather(*(db.users.get_by_email("x@example.com") for _ in range(2)))
        await asyncio.to_thread(devserver.stop, home)
        try:
            with pytest.raises(DatabaseUnavailableError, match="could not be reached") as caught:
                await db.users.get_by_email("x@example.com")
            assert not isinstance(caught.value, PoolTimeoutError)
        finally:
            await asyncio.to_thread(devserver.start, home)
        assert await db.users.get_by_email("x@example.com") is None  # and it recovers
