"""Hostile input to every route: odd and broken values in every query parameter and form
field get a typed answer (200, or a 4xx with a message), never a 500, and a refused write
changes no row."""

from __future__ import annotations

import random

import httpx
import pytest

from shared_db.client import Database
from shared_db.studio.catalog import tables
from shared_db.studio.query import OPERATORS
from tests.conftest import Stores
from tests.factories import make_user
from tests.studio.conftest import csrf_of

pytestmark = pytest.mark.shared_only
ODD = ["", " ", "'); DELETE FROM users; --", "\u202eevil", "😀" * 10, "x" * 10_000, "a" * 201,
       "ADMIN", "pending", "true", "1", "0", "-1", "1e400", "NaN", "2026-13-45", "2026-01-01",
       "00000000-0000-0000-0000-000000000000", "%s %(x)s {0}", "\\", "\u0085\u2028", "null",
       "WyJhIiwiYiJd", "eyJ0IjoiMjAyNi0wMS0wMSJ9", "x\x00y", "<script>alert(1)</script>",
       '{"a": [1, {"b": null}]}', "[" * 5000]
RAW = ["/t/users?f.email.eq=%ff%fe", "/t/users?%ff=1", "/t/users?&&&=&", "/t/users?sort",
       "/t/users/%00", "/t/%2e%2e/users", "/t/users?after=" + "A" * 5000]
WRITES = {"/w/users/new": ["email", "name", "role", "password", "email_verified",
                          "password_hash"],
          "/w/users/{user}/edit": ["name", "role", "email_verified", "updated_at", "id"],
          "/w/users/{user}/delete": [], "/w/users/{user}/restore": [],
          "/w/payments/{payment}/status": ["to", "expected"],
          "/w/config/set": ["key", "value", "description"],
          "/w/config/{odd}/delete": []}


async def test_odd_query_strings_are_answered_never_with_500(
        studio: httpx.AsyncClient) -> None:
    pick = random.Random(16)
    names = ["sort", "dir", "after", "deleted", "ok", "token2", "f.", "f.x.y.z"]
    for info in tables().values():
        names += [f"f.{f.name}.{op}" for f in info.fields
                  for op in (*OPERATORS["text"], "gte", "lte", "null", "in")]
    paths = list(RAW)
    for _ in range(200):
        table = pick.choice([*tables(), "nosuch", "users"])
        query = {pick.choice(names): pick.choice(ODD) for _ in range(pick.randint(1, 3))}
        paths.append(str(httpx.URL(f"/t/{table}", params=query)))
    for path in paths:
        answer = await studio.get(path)
        assert answer.status_code in (200, 400, 404), (path, answer.status_code)
        assert "Traceback" not in answer.text


async def test_odd_forms_are_refused_with_4xx_and_write_nothing(
        studio: httpx.AsyncClient, db: Database, stores: Stores) -> None:
    user = await make_user(db, "target@example.com")
    payment = await db.payments.create(user.id, "1.00", type="payment")
    csrf = csrf_of((await studio.get("/t/users")).text)
    pick = random.Random(16)
    for _ in range(60):
        route, fields = pick.choice(list(WRITES.items()))
        path = route.format(user=pick.choice([user.id, "nope"]), payment=payment.id,
                            odd=pick.choice(ODD[:4]))
        form = {f: pick.choice(ODD) for f in fields if pick.random() < 0.8}
        before = stores.digest()
        answer = await studio.post(path, data={"csrf": csrf, **form})
        assert answer.status_code in (303, 400, 404, 405, 409), (path, form, answer.text)
        assert "Traceback" not in answer.text
        if answer.status_code != 303:
            assert stores.digest() == before, (path, form)
