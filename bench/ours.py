"""shared-db's public async API."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from shared_db import Database, NewUser, load_settings
from shared_db.pagination import encode_cursor
from shared_db.profile.service import create_user_with_profile


class SharedDb:
    name = "shared_db"

    async def open(self, url: str, pool: int) -> None:
        settings = load_settings({"DATABASE_URL": f"{url}?connection_limit={pool}",
                                  "SHARED_DB_ENV": "production"})
        self.db = await Database(settings).open()

    async def close(self) -> None:
        await self.db.close()

    def cursor(self, at: tuple[datetime, uuid.UUID]) -> Any:
        return encode_cursor(*at)

    async def w1(self, user_id: uuid.UUID) -> Any:
        return await self.db.users.get(user_id)

    async def w2(self, user_id: uuid.UUID) -> Any:
        return await self.db.users.eager(user_id)

    async def w3(self, user_id: uuid.UUID, cursor: Any) -> Any:
        return await self.db.payments.page(user_id, limit=20, cursor=cursor)

    async def w4_first(self) -> Any:
        return await self.db.payments.page(limit=20)

    async def w4_keyset(self, cursor: Any) -> Any:
        return await self.db.payments.page(limit=20, cursor=cursor)

    async def w4_offset(self, offset: int) -> Any:
        return await self.db.payments.list_page(page=offset // 20 + 1, per_page=20)

    async def w5(self, user_id: uuid.UUID) -> Any:
        return await self.db.payments.create(user_id, Decimal("9.99"), type="payment")

    async def w6(self, email: str, password_hash: str) -> Any:
        return await create_user_with_profile(self.db, email=email, password_hash=password_hash,
                                              name="New", role="CUSTOMER",
                                              profile={"preferences": {}})

    async def w7(self, rows: list[tuple[str, str, str, str]]) -> int:
        return await self.db.users.create_many(
            [NewUser(email=e, password_hash=h, name=n, role=r) for e, h, n, r in rows])

    async def w8(self, role: str) -> Any:
        return await self.db.reports.payment_reports(role)
