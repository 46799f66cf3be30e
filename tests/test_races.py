"""Races on real connections: the database decides, the caller gets a typed answer."""

from __future__ import annotations

import asyncio
import logging

import psycopg
import pytest

from shared_db.auth.repository import NewUser
from shared_db.client import Database
from shared_db.errors import DuplicateError
from tests.conftest import Stores
from tests.factories import PASSWORD_HASH


async def test_same_email_registered_twice_at_once(db: Database, stores: Stores) -> None:
    for n in range(5):
        results = await asyncio.gather(
            db.users.create(email=f"Race{n}@Example.com", password_hash=PASSWORD_HASH, name="A",
                            role="CUSTOMER"),
            db.users.create(email=f"race{n}@example.COM", password_hash=PASSWORD_HASH, name="B",
                            role="CUSTOMER"), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert len(errors) == 1 and isinstance(errors[0], DuplicateError), results
        assert errors[0].field == "email"
    with (psycopg.connect(stores.url("auth")) as conn,
          psycopg.connect(stores.url("admin")) as admin):
        rows = conn.execute("SELECT lower(email), count(*) FROM users GROUP BY 1").fetchall()
        audits = admin.execute("SELECT count(*) FROM audit_logs WHERE action = 'user.created'")
        assert all(count == 1 for _, count in rows) and len(rows) == 5
        assert audits.fetchone() == (5,)  # the loser's audit row went with its transaction


async def test_concurrent_overlapping_batches_skip_duplicates(db: Database,
                                                              stores: Stores) -> None:
    def batch(start: int, stop: int) -> list[NewUser]:
        return [NewUser(email=f"b{i}@example.com", name="B", role="VENDOR",
                        password_hash=PASSWORD_HASH) for i in range(start, stop)]

    counts = await asyncio.gather(db.users.create_many(batch(0, 3000)),
                                  db.users.create_many(batch(1000, 4000)),
                                  db.users.create_many(batch(2000, 5000)))
    assert sum(counts) == 5000
    with psycopg.connect(stores.url("auth")) as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT email) FROM users").fetchone() == (
            5000, 5000)


async def test_logs_hold_no_secrets_by_default(db: Database,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    user = await db.users.create(email="secret.person@example.com", password="hunter2hunter2",
                                 name="S", role="CUSTOMER")
    issued = await db.tokens.issue(user.id)
    await db.tokens.rotate(issued.token)
    await db.users.verify_password("secret.person@example.com", "hunter2hunter2")
    assert caplog.records, "queries are logged in development"
    text = caplog.text
    for secret in ("hunter2", issued.token, "secret.person", "$2b$"):
        assert secret not in text
