"""The audit trail's reads answer rows written in one transaction (one created_at) in one order."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from shared_db.client import Database


async def test_by_user_with_a_limit_is_a_prefix_of_a_longer_answer(db: Database) -> None:
    actor = uuid.uuid4()
    async with db.transaction() as tx:
        for i in range(30):
            await tx.audit.record(f"step.{i}", user_id=actor)
    every = await db.audit.by_user(actor, limit=30)
    assert len(every) == 30 and len({row.created_at for row in every}) == 1
    for limit in range(1, 30):
        assert await db.audit.by_user(actor, limit=limit) == every[:limit]


async def test_by_action_orders_rows_of_one_instant_by_id(db: Database) -> None:
    async with db.transaction() as tx:
        for _ in range(20):
            await tx.audit.record("batch.step", details={"n": 1})
    rows = await db.audit.by_action("batch.step", datetime.now(UTC) - timedelta(minutes=5))
    assert [row.id for row in rows] == sorted(row.id for row in rows)
