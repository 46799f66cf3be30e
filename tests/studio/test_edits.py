"""Edits through the ASGI app: each goes through a repository, writes its audit row naming
the studio, and a refused one shows the typed error on the page and writes nothing."""

from __future__ import annotations

import httpx

from shared_db.client import Database
from shared_db.enums import PaymentStatus
from shared_db.studio.edits import AGENT
from tests.conftest import Stores
from tests.factories import make_user
from tests.studio.conftest import hidden_of


async def _post(studio: httpx.AsyncClient, page: str, path: str,
                form: dict[str, str]) -> httpx.Response:
    hidden = hidden_of((await studio.get(page)).text, path)
    return await studio.post(path, data={**hidden, **form})


async def test_create_edit_soft_delete_and_restore_a_user(studio: httpx.AsyncClient,
                                                          db: Database) -> None:
    created = await _post(studio, "/t/users", "/w/users/new", {
        "email": "New@Example.com", "name": "New", "role": "VENDOR",
        "password": "a-long-password-1", "email_verified": "false"})
    assert created.status_code == 303
    user = await db.users.get_by_email("new@example.com")
    assert user is not None and user.role.value == "VENDOR"
    assert await db.users.verify_password("new@example.com", "a-long-password-1")
    page = f"/t/users/{user.id}"
    edited = await _post(studio, page, f"/w/users/{user.id}/edit",
                         {"name": "Renamed", "role": "ADMIN", "email_verified": "true"})
    assert edited.headers["location"] == f"{page}?ok=updated"
    after = await db.users.get_one(user.id)
    assert (after.name, after.role.value, after.email_verified) == ("Renamed", "ADMIN", True)
    assert (await _post(studio, page, f"/w/users/{user.id}/delete", {})).status_code == 303
    assert await db.users.get(user.id) is None
    assert (await _post(studio, page, f"/w/users/{user.id}/restore", {})).status_code == 303
    rows = await db.audit.for_resource("user", user.id)
    # one edit writes two rows with the same created_at: compare without their order
    assert sorted(r.action for r in rows) == sorted([
        "user.created", "user.updated", "user.role_changed", "user.soft_deleted",
        "user.restored"])
    assert {r.user_agent for r in rows} == {AGENT}
    assert "Saved." in (await studio.get(f"{page}?ok=updated")).text


async def test_refused_user_changes_show_the_typed_error_and_write_nothing(
        studio: httpx.AsyncClient, db: Database) -> None:
    taken = await make_user(db, "taken@example.com")
    duplicate = await _post(studio, "/t/users", "/w/users/new", {
        "email": "taken@example.com", "name": "X", "role": "CUSTOMER",
        "password": "a-long-password-1", "email_verified": "false"})
    assert duplicate.status_code == 409 and "DuplicateError" in duplicate.text
    weak = await _post(studio, "/t/users", "/w/users/new", {
        "email": "weak@example.com", "name": "X", "role": "CUSTOMER", "password": "1",
        "email_verified": "false"})
    assert weak.status_code == 400 and "ValidationError" in weak.text
    missing = await _post(studio, "/t/users", "/w/users/new", {"email": "m@example.com"})
    assert missing.status_code == 400 and "required" in missing.text
    page = f"/t/users/{taken.id}"
    bad_role = await _post(studio, page, f"/w/users/{taken.id}/edit",
                           {"name": "Renamed", "role": "KING", "email_verified": "true"})
    assert bad_role.status_code == 400 and "ValidationError" in bad_role.text
    assert (await db.users.get_one(taken.id)).name == "U"  # the rename went with the refusal
    assert (await _post(studio, page, f"/w/users/{taken.id}/restore", {})).status_code == 404
    assert (await _post(studio, page, "/w/users/nope/delete", {})).status_code == 400
    assert [r.action for r in await db.audit.for_resource("user", taken.id)] == [
        "user.created"]
    assert await db.users.get_by_email("weak@example.com") is None


async def test_payment_status_follows_the_state_machine(studio: httpx.AsyncClient,
                                                        db: Database) -> None:
    user = await make_user(db, "payer@example.com")
    payment = await db.payments.create(user.id, "20.00", type="payment")
    page = f"/t/payments/{payment.id}"
    shown = (await studio.get(page)).text
    assert '<option>cancelled</option><option>initiated</option></select>' in shown
    path = f"/w/payments/{payment.id}/status"
    skipped = await _post(studio, page, path, {"to": "completed", "expected": "pending"})
    assert skipped.status_code == 409 and "InvalidTransitionError" in skipped.text
    moved = await _post(studio, page, path, {"to": "initiated", "expected": "pending"})
    assert moved.status_code == 303
    stale = await _post(studio, page, path, {"to": "cancelled", "expected": "pending"})
    assert stale.status_code == 409 and "ConflictError" in stale.text
    assert (await db.payments.get(payment.id)).status is PaymentStatus.initiated  # type: ignore[union-attr]
    rows = await db.audit.for_resource("payment", payment.id)
    assert [(r.action, r.details, r.user_agent) for r in rows] == [
        ("payment.status_changed", {"from": "pending", "to": "initiated"}, AGENT)]
    assert "payment.status_changed" in (await studio.get(page)).text


async def test_system_config_set_and_delete(studio: httpx.AsyncClient, db: Database) -> None:
    saved = await _post(studio, "/t/system_config", "/w/config/set",
                        {"key": "feature/x", "value": '{"on": true}', "description": "d"})
    assert saved.status_code == 303
    assert (await db.config.value("feature/x")) == {"on": True}
    record = await studio.get(saved.headers["location"])
    assert record.status_code == 200 and "config.changed" in record.text
    bad = await _post(studio, "/t/system_config", "/w/config/set",
                      {"key": "k", "value": "{not json"})
    assert bad.status_code == 400 and "must be JSON" in bad.text
    deleted = await _post(studio, "/t/system_config", "/w/config/feature/x/delete", {})
    assert deleted.status_code == 303 and await db.config.get("feature/x") is None
    again = await _post(studio, "/t/system_config", "/w/config/feature/x/delete", {})
    assert again.status_code == 404 and "NotFoundError" in again.text
    assert await db.config.get("k") is None


async def test_operations_pages(studio: httpx.AsyncClient, stores: Stores) -> None:
    migrations = await studio.get("/ops/migrations")
    assert migrations.status_code == 200 and "Up to date" in migrations.text
    stats = await studio.get("/ops/stats")
    assert stats.status_code == 200 and stats.text.count('<svg class="chart"') >= 2
    doctor = await studio.get("/ops/doctor")
    assert doctor.status_code == 200 and ">server<" in doctor.text and ">migrations<" in doctor.text
    if stores.topology == "per-service":
        assert all(f"<h2>{s} " in migrations.text for s in ("auth", "payments"))
