"""A request's timeout cancels its task anywhere inside a call: the connection it held goes
back to the pool, and nothing is left half done."""

from __future__ import annotations

import asyncio
import random

from shared_db.client import Database, Transaction
from tests.conftest import Stores


async def test_cancelled_calls_give_their_connections_back(db: Database, stores: Stores) -> None:
    pick = random.Random(7)

    async def in_a_transaction() -> None:
        async with db.transaction() as tx:
            await tx.config.get("k")

    async def written(tx: Transaction) -> None:
        await tx.config.set("cancel.me", 1)

    calls = [in_a_transaction, lambda: db.config.set("cancel.direct", 2),
             lambda: db.run(written), lambda: db.users.get_by_email("x@example.com")]
    for n in range(60):
        task = asyncio.create_task(calls[n % len(calls)]())
        await asyncio.sleep(0 if n % 3 == 0 else pick.random() / 500)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    await asyncio.sleep(0.2)  # returned connections are reset by the pool's workers
    for pool in {id(p): p for p in (db.pool(s) for s in stores.urls)}.values():
        stats = pool.get_stats()
        assert stats.get("pool_size", 0) - stats.get("pool_available", 0) == 0, stats
    # And the pool still serves as many callers at once as it has connections.
    found = await asyncio.wait_for(asyncio.gather(
        *(db.config.get("k") for _ in range(16))), timeout=10)
    assert found == [None] * 16
