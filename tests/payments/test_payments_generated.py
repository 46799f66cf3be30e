"""Generated input to payments: cursors, keyset walks over tied timestamps, metadata."""

from __future__ import annotations

import base64
import json
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared_db.client import Database
from shared_db.errors import ValidationError
from shared_db.records import Page
from tests.conftest import Stores
from tests.factories import make_user

SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
URL_SAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                               max_size=4),
    max_leaves=12)


def _numbers_as_floats(value: Any) -> Any:
    """``value`` with every number a float: jsonb keeps numbers as numeric, so a float such as
    1e16 comes back as the int 10000000000000000, equal as a number."""
    if isinstance(value, dict):
        return {k: _numbers_as_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers_as_floats(v) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value


def _b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode("utf-8", "surrogatepass")).decode().rstrip("=")


CURSORS = (st.text(URL_SAFE, min_size=1, max_size=220)
           | JSON.map(lambda v: _b64(json.dumps(v)))
           | st.tuples(st.text(max_size=40), st.text(max_size=40)).map(
               lambda pair: _b64(json.dumps(list(pair)))))


@pytest.fixture
async def user(db: Database):
    return await make_user(db, "gen@example.com", name="G")


@SETTINGS
@given(cursor=CURSORS)
async def test_any_cursor_gives_a_page_or_is_refused_by_name(db: Database, user,
                                                             cursor: str) -> None:
    try:
        page = await db.payments.page(user.id, limit=3, cursor=cursor)
    except ValidationError as error:
        assert error.field == "cursor"
    else:
        assert isinstance(page, Page) and page.items == ()


@SETTINGS
@given(groups=st.lists(st.integers(1, 6), min_size=1, max_size=6),
       limit=st.integers(1, 8), by_status=st.booleans())
async def test_a_keyset_walk_over_tied_timestamps_sees_each_row_once_in_order(
        db: Database, user, stores: Stores, groups: list[int], limit: int,
        by_status: bool) -> None:
    with psycopg.connect(stores.url("payments"), autocommit=True) as conn:
        conn.execute("DELETE FROM payments")
        for hour, size in enumerate(groups):
            conn.execute(
                "INSERT INTO payments (user_id, amount, status, type, created_at) "
                "SELECT %s, 1, CASE WHEN k %% 2 = 0 THEN 'completed' ELSE 'pending' END::"
                "\"PaymentStatus\", 'payment', timestamptz '2026-01-01' + %s * interval '1 hour'"
                " FROM generate_series(1, %s) k", (user.id, hour % 3, size))
        where = "WHERE status = 'pending'" if by_status else ""
        expected = [row[0] for row in conn.execute(
            f"SELECT id FROM payments {where} ORDER BY created_at DESC, id DESC")]
    status = "pending" if by_status else None
    seen: list[Any] = []
    cursor = None
    for _ in range(len(expected) + 2):
        page = await db.payments.page(user.id, status=status, limit=limit, cursor=cursor)
        assert len(page.items) <= limit
        seen += [p.id for p in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == expected
    offset = await db.payments.list_page(user.id, status=status, per_page=limit, page=1,
                                         with_total=True)
    assert [p.id for p in offset.items] == expected[:limit] and offset.total == len(expected)


@SETTINGS
@given(metadata=st.dictionaries(st.text(max_size=8), JSON, max_size=4))
async def test_metadata_is_stored_as_its_json_or_refused_writing_nothing(
        db: Database, user, stores: Stores, metadata: dict[str, Any]) -> None:
    before = stores.digest()
    try:
        payment = await db.payments.create(user.id, "1.00", type="payment", metadata=metadata)
    except ValidationError as error:
        assert error.field == "metadata" and stores.digest() == before
    else:
        assert _numbers_as_floats(payment.metadata) == _numbers_as_floats(
            json.loads(json.dumps(metadata)))
        assert await db.payments.get(payment.id) == payment
