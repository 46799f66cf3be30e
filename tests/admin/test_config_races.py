"""Concurrent writes of one system_config key: each audit row names the value it replaced."""

from __future__ import annotations

import asyncio
import itertools

import psycopg

from shared_db.client import Database
from tests.conftest import Stores


async def _wait_for_lock_waiter(url: str) -> None:
    """Until a backend of this database waits for a lock (the second writer, blocked)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        for _ in range(500):
            cursor = await conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'")
            row = await cursor.fetchone()
            if row is not None and row[0] > 0:
                return
            await asyncio.sleep(0.01)
    raise AssertionError("the second set never waited for the first")


async def test_a_set_that_waited_for_a_concurrent_first_set_audits_its_value_as_old(
        db: Database, stores: Stores) -> None:
    async with db.transaction() as tx:
        await tx.config.set("limits", {"daily": 1})
        second = asyncio.create_task(db.config.set("limits", {"daily": 2}))
        await _wait_for_lock_waiter(stores.url("admin"))
    record = await second
    assert record.value == {"daily": 2}
    history = await db.audit.for_resource("system_config", "limits")
    assert [(h.action, h.details) for h in history] == [
        ("config.changed", {"old": None, "new": {"daily": 1}}),
        ("config.changed", {"old": {"daily": 1}, "new": {"daily": 2}})]


async def test_concurrent_first_sets_audit_one_new_key_and_one_change(db: Database) -> None:
    for round_ in range(5):
        key = f"flag.{round_}"
        await asyncio.gather(db.config.set(key, "a"), db.config.set(key, "b"))
        history = [h.details for h in await db.audit.for_resource("system_config", key)]
        final = (await db.config.get(key)).value  # type: ignore[union-attr]
        # Either may have inserted first (the order of their audit rows is their start times').
        first = {"old": None, "new": "b" if final == "a" else "a"}
        pairs = sorted((str(d["old"]), d["new"]) for d in history)  # type: ignore[index]
        assert pairs == sorted([("None", first["new"]), (str(first["new"]), final)])


async def test_a_stored_json_null_is_replaced_as_an_existing_value(db: Database) -> None:
    await db.config.set("maybe", None)
    await db.config.set("maybe", 1)
    history = await db.audit.for_resource("system_config", "maybe")
    assert [h.details for h in history] == [{"old": None, "new": None}, {"old": None, "new": 1}]
    assert (await db.config.get("maybe")).value == 1  # type: ignore[union-attr]


async def test_concurrent_changes_list_in_the_order_they_took_effect(db: Database) -> None:
    # Each audit row was stamped when its transaction began, before it waited for the row
    # lock: the history listed changes out of the order they happened in.
    user = await db.users.create(email="roles-race@example.com", password="password123",
                                 name="R", role="CUSTOMER")
    await asyncio.gather(*(db.users.set_role(user.id, r) for r in
                           ["ADMIN", "VENDOR", "ADMIN", "CUSTOMER", "VENDOR", "ADMIN"]))
    await asyncio.gather(*(db.config.set("race.order", n) for n in range(6)))
    for resource, key in (("user", str(user.id)), ("system_config", "race.order")):
        history = [h.details for h in await db.audit.for_resource(resource, key)
                   if h.action in ("user.role_changed", "config.changed")]
        assert history, resource
        for before, after in itertools.pairwise(history):
            assert after["old"] == before["new"], history  # type: ignore[index]
