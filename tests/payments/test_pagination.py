"""Offset and keyset pagination; keyset never skips or repeats, even with equal timestamps."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from shared_db.client import Database
from shared_db.errors import ValidationError
from shared_db.pagination import encode_cursor
from shared_db.sql import QueryEvent
from tests.conftest import Stores
from tests.factories import make_user


@pytest.fixture
async def user(db: Database, stores: Stores):
    user = await make_user(db, "pg@example.com", name="P")
    with psycopg.connect(stores.url("payments"), autocommit=True) as conn:
        # 45 payments on 9 distinct timestamps: 5 rows share each timestamp.
        conn.execute(
            "INSERT INTO payments (user_id, amount, status, type, created_at) "
            "SELECT %s, k, CASE WHEN k %% 3 = 0 THEN 'completed' ELSE 'pending' END::"
            "\"PaymentStatus\", 'payment', "
            "timestamptz '2026-01-01' + (k / 5) * interval '1 hour' "
            "FROM generate_series(0, 44) k", (user.id,))
    return user


def _order(url: str, where: str = "") -> list:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute(
            f"SELECT id FROM payments {where} ORDER BY created_at DESC, id DESC")]


async def _walk(db: Database, user, limit: int, **filters) -> list:
    seen, cursor = [], None
    while True:
        page = await db.payments.page(user.id, limit=limit, cursor=cursor, **filters)
        seen += [p.id for p in page.items]
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor


@pytest.mark.parametrize("limit", [1, 4, 5, 7, 45, 100])
async def test_keyset_walk_sees_every_row_once(db: Database, user, stores: Stores,
                                               limit: int) -> None:
    assert await _walk(db, user, limit) == _order(stores.url("payments"))


async def test_keyset_with_status_filter(db: Database, user, stores: Stores) -> None:
    expected = _order(stores.url("payments"), "WHERE status = 'completed'")
    assert await _walk(db, user, 4, status="completed") == expected and len(expected) == 15


async def test_rows_inserted_between_pages_are_neither_skipped_nor_repeated(
        db: Database, user, stores: Stores) -> None:
    original = _order(stores.url("payments"))
    first = await db.payments.page(user.id, limit=10)
    boundary = first.items[-1]
    # New payments arrive: newer than everything, and tied with the last row already seen.
    with psycopg.connect(stores.url("payments"), autocommit=True) as conn:
        conn.execute("INSERT INTO payments (user_id, amount, status, type) "
                     "SELECT %s, 1, 'pending', 'payment' FROM generate_series(1, 3)", (user.id,))
        tied = [conn.execute(
            "INSERT INTO payments (user_id, amount, status, type, created_at) "
            "VALUES (%s, 2, 'pending', 'payment', %s) RETURNING id",
            (user.id, boundary.created_at)).fetchone()[0] for _ in range(6)]
    rest, cursor = [], first.next_cursor
    while cursor:
        page = await db.payments.page(user.id, limit=10, cursor=cursor)
        rest += [p.id for p in page.items]
        cursor = page.next_cursor
    walked = [p.id for p in first.items] + rest
    assert len(walked) == len(set(walked))
    assert [i for i in walked if i in set(original)] == original
    # A tied row appears exactly when it sorts after the position the cursor stands for.
    assert {i for i in walked if i in set(tied)} == {i for i in tied if i < boundary.id}


async def test_offset_pages_and_total(db: Database, user, stores: Stores) -> None:
    order = _order(stores.url("payments"))
    pages = [await db.payments.list_page(user.id, page=n, per_page=20) for n in (1, 2, 3)]
    assert [p.id for page in pages for p in page.items] == order
    counted = await db.payments.list_page(user.id, status="pending", with_total=True)
    assert counted.total == 30 and len(counted.items) == 20
    events: list[QueryEvent] = []
    db.hooks.listeners.append(events.append)
    for number, size in ((1, 20), (2, 20), (3, 20), (9, 20)):
        page = await db.payments.list_page(user.id, page=number, per_page=size, with_total=True)
        assert page.total == len(order)
        assert [p.id for p in page.items] == order[size * (number - 1):][:size]
    # Each page and its total are one statement: read from one snapshot, they always agree.
    assert [e.name for e in events] == ["payments.list.user.counted.20"] * 4
    nobody = await db.payments.list_page(uuid.uuid4(), with_total=True)
    assert nobody.items == () and nobody.total == 0


async def test_all_payments_pages(db: Database, user, stores: Stores) -> None:
    page = await db.payments.page(limit=45)
    assert [p.id for p in page.items] == _order(stores.url("payments")) and page.next_cursor is None


@pytest.mark.parametrize("cursor", ["", "garbage", "eyJ4IjoxfQ", "W10", "!!!",
                                    encode_cursor.__name__])
async def test_foreign_cursors_are_refused(db: Database, user, cursor: str) -> None:
    with pytest.raises(ValidationError, match="cursor: is not a cursor returned by this API"):
        await db.payments.page(user.id, cursor=cursor)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"limit": 0}, "limit"), ({"limit": 1001}, "limit"), ({"limit": True}, "limit"),
    ({"status": "done"}, "status")])
async def test_bad_page_arguments(db: Database, user, kwargs: dict, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        await db.payments.page(user.id, **kwargs)
    assert caught.value.field == field
    with pytest.raises(ValidationError, match="page"):
        await db.payments.list_page(user.id, page=0)
