"""``users.update``: the name and email_verified an operator may correct, audited."""

from __future__ import annotations

import pytest

from shared_db import acting_as
from shared_db.client import Database
from shared_db.errors import NotFoundError, ValidationError
from tests.factories import make_user


async def test_update_changes_only_the_given_fields_and_audits_old_and_new(db: Database) -> None:
    user = await make_user(db, "edit@example.com", name="Old")
    with acting_as(None, "127.0.0.1", "shared-db studio"):
        changed = await db.users.update(user.id, name="New")
    assert (changed.name, changed.email_verified) == ("New", False)
    rows = await db.audit.for_resource("user", user.id)
    last = rows[-1]
    assert last.action == "user.updated"
    assert last.details == {"name": {"old": "Old", "new": "New"}}
    assert last.user_agent == "shared-db studio"


async def test_update_refuses_nothing_to_change_bad_values_and_deleted_users(
        db: Database) -> None:
    user = await make_user(db, "refuse@example.com")
    with pytest.raises(ValidationError):
        await db.users.update(user.id)
    with pytest.raises(ValidationError):
        await db.users.update(user.id, name="")
    await db.users.soft_delete(user.id)
    with pytest.raises(NotFoundError):
        await db.users.update(user.id, email_verified=True)
    assert (await db.users.get(user.id, include_deleted=True)).email_verified is False  # type: ignore[union-attr]


async def test_an_update_to_the_stored_values_writes_nothing(db: Database) -> None:
    user = await make_user(db, "same@example.com", name="Same")
    before = await db.audit.for_resource("user", user.id)
    again = await db.users.update(user.id, name="Same", email_verified=False)
    assert again == user  # updated_at untouched
    assert await db.audit.for_resource("user", user.id) == before
    half = await db.users.update(user.id, name="Same", email_verified=True)
    assert half.email_verified and half.name == "Same"
    last = (await db.audit.for_resource("user", user.id))[-1]
    assert last.details == {"email_verified": {"old": False, "new": True}}
