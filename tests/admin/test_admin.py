"""The audit trail (guide 11.2) and system configuration."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared_db.client import Database
from shared_db.context import acting_as
from shared_db.errors import NotFoundError, ValidationError
from shared_db.validation import MAX_JSON_BYTES, MAX_JSON_DEPTH
from tests.conftest import Stores


async def test_record_audit_event_like_the_guide(db: Database) -> None:
    actor, payment = uuid.uuid4(), uuid.uuid4()
    with acting_as(actor, "203.0.113.9", "admin-ui/3"):
        row = await db.audit.record("payment.created", resource_type="payment",
                                    resource_id=payment, details={"amount": "10.00"})
    assert (row.user_id, row.action, row.resource_type, row.resource_id, row.details) == (
        actor, "payment.created", "payment", str(payment), {"amount": "10.00"})
    assert (row.ip_address, row.user_agent) == ("203.0.113.9", "admin-ui/3")
    assert await db.audit.by_user(actor) == [row]
    since = datetime.now(UTC) - timedelta(minutes=5)
    assert await db.audit.by_action("payment.created", since) == [row]


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"action": ""}, "action"), ({"action": "x" * 201}, "action"),
    ({"action": "a", "details": {"v": float("inf")}}, "details"),
    ({"action": "a", "resource_type": "t\x00"}, "resource_type"),
])
async def test_bad_audit_input(db: Database, stores: Stores, kwargs: dict,
                               field: str) -> None:
    before = stores.digest()
    kwargs = dict(kwargs)  # the parametrised dict is shared by both topologies' runs
    action = kwargs.pop("action")
    with pytest.raises(ValidationError) as caught:
        await db.audit.record(action, **kwargs)
    assert caught.value.field == field and stores.digest() == before


async def test_config_set_get_list_delete_are_audited(db: Database) -> None:
    admin = uuid.uuid4()
    with acting_as(admin):
        first = await db.config.set("payments.limit", {"daily": 1000}, description="Daily cap")
        second = await db.config.set("payments.limit", {"daily": 2000})
        await db.config.set("maintenance", False, updated_by="ops-bot")
    assert first.updated_by == str(admin) and second.description == "Daily cap"
    assert await db.config.value("payments.limit") == {"daily": 2000}
    assert await db.config.value("missing", default=7) == 7
    assert [c.key for c in await db.config.list()] == ["maintenance", "payments.limit"]
    assert (await db.config.get("maintenance")).value is False
    history = await db.audit.for_resource("system_config", "payments.limit")
    assert [(h.action, h.details) for h in history] == [
        ("config.changed", {"old": None, "new": {"daily": 1000}}),
        ("config.changed", {"old": {"daily": 1000}, "new": {"daily": 2000}})]
    await db.config.delete("maintenance")
    assert await db.config.get("maintenance") is None
    with pytest.raises(NotFoundError):
        await db.config.delete("maintenance")


async def test_config_set_to_what_is_stored_writes_nothing(db: Database, stores: Stores,
                                                           ) -> None:
    first = await db.config.set("flag", {"on": True, "n": 1}, description="A flag")
    before = stores.digest()
    for same in ({"n": 1, "on": True}, {"on": True, "n": 1}):
        assert await db.config.set("flag", same) == first  # no updated_at bump, no audit row
        assert await db.config.set("flag", same, description="A flag") == first
    assert stores.digest() == before
    changed = await db.config.set("flag", {"on": 1, "n": 1})  # jsonb: true is not 1
    assert changed.value == {"on": 1, "n": 1} and changed.updated_at > first.updated_at
    assert (await db.config.set("flag", {"on": 1, "n": 1}, description="Other")).description \
        == "Other"
    history = await db.audit.for_resource("system_config", "flag")
    assert len(history) == 3


@pytest.mark.parametrize(("key", "value", "field"), [
    ("", 1, "key"), ("k", {1, 2}, "value"), ("k", "\x00", "value"), ("k", float("nan"), "value"),
    ("k" * 201, 1, "key")])
async def test_bad_config(db: Database, stores: Stores, key: str, value: object,
                          field: str) -> None:
    before = stores.digest()
    with pytest.raises(ValidationError) as caught:
        await db.config.set(key, value)
    assert caught.value.field == field and stores.digest() == before


async def test_service_functions(db: Database) -> None:
    from shared_db.admin.service import record_audit_event, set_system_config

    with acting_as(ip_address="198.51.100.4"):
        row = await record_audit_event(db, "report.exported", resource_type="report",
                                       resource_id="monthly")
        config = await set_system_config(db, "feature.flags", ["a", "b"])
    assert row.ip_address == "198.51.100.4" and config.value == ["a", "b"]
    async with db.transaction() as tx:
        await record_audit_event(tx, "inside.transaction")
    assert len(await db.audit.for_resource("system_config", "feature.flags")) == 1


async def test_config_values_at_the_limits_are_set_changed_and_audited(db: Database) -> None:
    deep: dict[str, object] = {}
    inner = deep
    for _ in range(MAX_JSON_DEPTH - 1):
        inner["a"] = {}
        inner = inner["a"]  # type: ignore[assignment]
    big = "x" * (MAX_JSON_BYTES - 20)
    for key, value in (("deep", deep), ("big", big), ("big", "y" * (MAX_JSON_BYTES - 20))):
        assert (await db.config.set(key, value)).value == value
    rows = await db.audit.for_resource("system_config", "big")
    assert [r.details["new"][:1] for r in rows] == ["x", "y"]  # type: ignore[index]
    assert rows[-1].details["old"][:1] == "x"  # type: ignore[index]
    await db.config.delete("big")


async def test_an_empty_details_object_is_stored_as_one(db: Database) -> None:
    assert (await db.audit.record("probe.empty", details={})).details == {}
