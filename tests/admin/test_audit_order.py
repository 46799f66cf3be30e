"""The audit trail's reads answer in one order: by the time each row was written, then by id
(rows written in the same microsecond)."""

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
    assert len(every) == 30
    assert [r.action for r in every] == [f"step.{i}" for i in reversed(range(30))]  # newest first
    for limit in range(1, 30):
        assert await db.audit.by_user(actor, limit=limit) == every[:limit]


async def test_by_action_orders_rows_by_time_then_id(db: Database) -> None:
    async with db.transaction() as tx:
        for _ in range(20):
            await tx.audit.record("batch.step", details={"n": 1})
    rows = await db.audit.by_action("batch.step", datetime.now(UTC) - timedelta(minutes=5))
    assert rows == sorted(rows, key=lambda row: (row.created_at, row.id))
