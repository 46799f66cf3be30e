"""Values built to break the checks themselves: ints too long to print, a ``__len__`` that lies,
a time zone whose offset raises or exceeds a day, integers past the stored JSON rule, and text
that only spells a NUL. Each is a ``ValidationError`` naming its parameter, and writes nothing."""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from shared_db.client import Database
from shared_db.errors import ValidationError
from tests.conftest import Stores
from tests.factories import make_user


class _Lying(list):  # type: ignore[type-arg]
    def __init__(self, length: int) -> None:
        super().__init__()
        self.length = length

    def __len__(self) -> int:
        return self.length


class _FarZone(tzinfo):
    def __init__(self, offset: timedelta | None) -> None:
        self.offset = offset

    def utcoffset(self, dt: datetime | None) -> timedelta:
        if self.offset is None:
            raise RuntimeError("no offset today")
        return self.offset

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def _rows(stores: Stores) -> dict[str, int]:
    found = {}
    for service in ("auth", "payments", "admin"):
        with psycopg.connect(stores.url(service)) as conn:
            for table in {"auth": ("users",), "payments": ("payments",),
                          "admin": ("audit_logs", "system_config")}[service]:
                row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
                found[table] = int(row[0]) if row else 0
    return found


async def test_ints_too_long_to_print_are_named(db: Database) -> None:
    async def work(tx: Any) -> int:
        return 1

    with pytest.raises(ValidationError) as caught:
        await db.run(work, retries=-10**5000)
    assert caught.value.field == "retries"
    for bad in (10**5000, _nested(10_000)):
        with pytest.raises(ValidationError) as caught:
            Database(db.settings, recover_after=bad)  # type: ignore[arg-type]
        assert caught.value.field == "recover_after"
    for call in (lambda: db.unit(x=1), lambda: db.actor(x=1)):  # type: ignore[call-arg]
        with pytest.raises(ValidationError, match="x: is not a parameter"):
            call()


@pytest.mark.parametrize("length", [10**20, -1])
async def test_a_len_that_lies_is_refused(db: Database, stores: Stores, length: int) -> None:
    before = _rows(stores)
    with pytest.raises(ValidationError) as caught:
        await db.users.create_many(_Lying(length))
    assert caught.value.field == "users"
    with pytest.raises(ValidationError) as caught:
        await db.users.eager_many(_Lying(length), payments=5)
    assert caught.value.field == "user_ids"
    assert _rows(stores) == before


@pytest.mark.parametrize("offset", [timedelta(hours=30), None], ids=["30h", "raises"])
async def test_a_time_zone_without_a_usable_offset_is_refused(db: Database, stores: Stores,
                                                              offset: timedelta | None) -> None:
    when = datetime(2020, 1, 1, tzinfo=_FarZone(offset))
    with pytest.raises(ValidationError) as caught:
        await db.audit.by_action("x", when)
    assert caught.value.field == "since"
    before = _rows(stores)

    async def work(tx: Any) -> datetime:
        await tx.config.set(f"far-{offset}", 1)
        return when

    with pytest.raises(ValidationError) as caught:
        await db.run(work, idempotency_key=f"far-{offset}", service="admin")
    assert caught.value.field == "result"
    assert _rows(stores) == before


async def test_a_long_int_in_metadata_is_refused_alike_with_or_without_a_key(
        db: Database, stores: Stores) -> None:
    user = await make_user(db, "long-int@example.com", name="L")
    before = _rows(stores)
    for key in (None, "long-int"):
        with pytest.raises(ValidationError, match="at most 4000 digits") as caught:
            await db.payments.create(user.id, Decimal("1.00"), type="payment",
                                     metadata={"a": 10**4100}, idempotency_key=key)
        assert caught.value.field == "metadata"
    assert _rows(stores) == before


async def test_text_that_spells_a_nul_is_not_one(db: Database) -> None:
    await db.config.set("spelled", "\\u0000")  # a backslash and five characters
    assert await db.config.value("spelled") == "\\u0000"
    with pytest.raises(ValidationError, match="NUL"):
        await db.config.set("real", "a\x00b")

