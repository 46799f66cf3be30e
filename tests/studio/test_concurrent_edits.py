"""A user's edit form carries the ``updated_at`` it showed: a change made after the page was
shown (by another operator or a service) is not silently undone by saving the form, and of
two saves of one page exactly one is written. Edits of a row soft-deleted or gone since are
refused with nothing written."""

from __future__ import annotations

import asyncio

import httpx
import psycopg
import pytest

from shared_db.client import Database
from tests.conftest import Stores
from tests.factories import make_user
from tests.studio.conftest import hidden_of


async def _form(studio: httpx.AsyncClient, user_id: object) -> dict[str, str]:
    page = (await studio.get(f"/t/users/{user_id}")).text
    return hidden_of(page, f"/w/users/{user_id}/edit")


async def test_a_change_made_after_the_page_was_shown_is_not_undone(
        studio: httpx.AsyncClient, db: Database, stores: Stores) -> None:
    user = await make_user(db, "stale@example.com", role="ADMIN", name="Old")
    shown = await _form(studio, user.id)
    assert set(shown) == {"csrf", "updated_at"}
    await db.users.set_role(user.id, "CUSTOMER")  # meanwhile: the admin right taken away
    before = stores.digest()
    answer = await studio.post(f"/w/users/{user.id}/edit", data={
        **shown, "name": "New", "role": "ADMIN", "email_verified": "false"})
    assert answer.status_code == 409
    assert "ConflictError" in answer.text and "after this page showed it" in answer.text
    assert stores.digest() == before
    after = await db.users.get_one(user.id)
    assert (after.name, after.role.value) == ("Old", "CUSTOMER")
    # the refusal shows the row as it is now, and its form saves
    again = hidden_of(answer.text, f"/w/users/{user.id}/edit")
    saved = await studio.post(f"/w/users/{user.id}/edit", data={
        **again, "name": "New", "role": "CUSTOMER", "email_verified": "false"})
    assert saved.status_code == 303
    assert (await db.users.get_one(user.id)).name == "New"


async def test_of_two_saves_of_one_page_one_is_written(
        studio: httpx.AsyncClient, db: Database) -> None:
    user = await make_user(db, "twice@example.com", name="Before")
    shown = await _form(studio, user.id)
    path = f"/w/users/{user.id}/edit"
    answers = await asyncio.gather(*[studio.post(path, data={
        **shown, "name": name, "role": role, "email_verified": verified})
        for name, role, verified in [("First", "VENDOR", "false"),
                                     ("Second", "CUSTOMER", "true")]])
    assert sorted(a.status_code for a in answers) == [303, 409]
    winner = ("First", "VENDOR", False) if answers[0].status_code == 303 else (
        "Second", "CUSTOMER", True)
    after = await db.users.get_one(user.id)
    assert (after.name, after.role.value, after.email_verified) == winner
    actions = sorted(r.action for r in await db.audit.for_resource("user", user.id))
    assert actions == (["user.created", "user.role_changed", "user.updated"]
                       if winner[0] == "First" else ["user.created", "user.updated"])


async def test_edits_of_a_row_soft_deleted_or_gone_since_write_nothing(
        studio: httpx.AsyncClient, db: Database, stores: Stores) -> None:
    deleted = await make_user(db, "deleted@example.com")
    gone = await make_user(db, "gone@example.com")
    forms = {u.id: await _form(studio, u.id) for u in (deleted, gone)}
    await db.users.soft_delete(deleted.id)
    await db.users.delete(gone.id)
    before = stores.digest()
    for user_id, shown in forms.items():
        for path, form in [(f"/w/users/{user_id}/edit", {
                **shown, "name": "X", "role": "ADMIN", "email_verified": "true"}),
                (f"/w/users/{user_id}/delete", {"csrf": shown["csrf"]})]:
            answer = await studio.post(path, data=form)
            if user_id == deleted.id and path.endswith("/edit"):  # shown: say why, and how
                assert answer.status_code == 409, (path, answer.text)
                assert "is soft-deleted: restore it first" in answer.text
            else:
                assert answer.status_code == 404, (path, answer.text)
            assert "Traceback" not in answer.text
    assert stores.digest() == before


@pytest.mark.shared_only
async def test_the_shown_updated_at_is_required_and_checked(
        studio: httpx.AsyncClient, db: Database, stores: Stores) -> None:
    user = await make_user(db, "stamp@example.com")
    shown = await _form(studio, user.id)
    form = {"csrf": shown["csrf"], "name": "X", "role": "CUSTOMER", "email_verified": "true"}
    before = stores.digest()
    for stamp, message in [(None, "updated_at: required"),
                           ("yesterday", "updated_at: must be an ISO date-time"),
                           ("2026-01-01T00:00:00", "updated_at: must carry its UTC offset"),
                           ("2026-01-01T00:00:00+00:00", "ConflictError")]:
        data = form if stamp is None else {**form, "updated_at": stamp}
        answer = await studio.post(f"/w/users/{user.id}/edit", data=data)
        assert answer.status_code in (400, 409) and message in answer.text, (stamp,
                                                                             answer.text)
    assert stores.digest() == before
    with psycopg.connect(stores.url("auth")) as conn:  # no lock left behind by a refusal
        conn.execute("SET lock_timeout = '2s'")
        conn.execute("SELECT 1 FROM users WHERE id = %s FOR UPDATE", (user.id,))
