"""Hand-written SQL on the raw async drivers: psycopg 3 (prepared statements) and asyncpg.

This is what the same work costs with nothing between the code and the driver but a pool of the
same size. Sync psycopg, the third raw contender, is in ``bench/raw_sync.py``; the report's ratios
are against whichever of the three is fastest in the round.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any

import asyncpg
from psycopg_pool import AsyncConnectionPool

USER = ("SELECT id, email, name, role, email_verified, created_at, updated_at, deleted_at "
        "FROM users WHERE id = {0} AND deleted_at IS NULL")
USER_PROFILE = ("SELECT u.id, u.email, u.name, u.role, u.email_verified, u.created_at, "
                "u.updated_at, u.deleted_at, p.id, p.user_id, p.avatar_url, p.phone, p.address, "
                "p.bio, p.preferences, p.created_at, p.updated_at FROM users u LEFT JOIN "
                "user_profiles p ON p.user_id = u.id WHERE u.id = {0} AND u.deleted_at IS NULL")
PAYMENTS = ("SELECT id, user_id, amount, currency, status, type, description, metadata, "
            "created_at, updated_at FROM payments ")
NEWEST = PAYMENTS + "WHERE user_id = {0} ORDER BY created_at DESC, id DESC LIMIT 10"
AFTER = PAYMENTS + ("WHERE user_id = {0} AND (created_at, id) < ({1}, {2}) "
                    "ORDER BY created_at DESC, id DESC LIMIT 21")
FIRST = PAYMENTS + "ORDER BY created_at DESC, id DESC LIMIT 21"
KEYSET = PAYMENTS + ("WHERE (created_at, id) < ({0}, {1}) "
                     "ORDER BY created_at DESC, id DESC LIMIT 21")
OFFSET = PAYMENTS + "ORDER BY created_at DESC, id DESC LIMIT 20 OFFSET {0}"
CREATE_PAYMENT = ("INSERT INTO payments (user_id, amount, status, type) VALUES "
                  "({0}, {1}, 'pending', 'payment') RETURNING id, user_id, amount, currency, "
                  "status, type, description, metadata, created_at, updated_at")
CREATE_USER = ("INSERT INTO users (email, password_hash, name, role) VALUES ({0}, {1}, 'New', "
               "'CUSTOMER') RETURNING id, email, name, role, email_verified, created_at, "
               "updated_at, deleted_at")
CREATE_PROFILE = "INSERT INTO user_profiles (user_id, preferences) VALUES ({0}, '{{}}') " \
                 "RETURNING *"
STAGE = "CREATE TEMP TABLE IF NOT EXISTS stage (email text, password_hash text, name text, " \
        "role \"UserRole\") ON COMMIT DELETE ROWS"
MERGE = "INSERT INTO users (email, password_hash, name, role) SELECT * FROM stage " \
        "ON CONFLICT DO NOTHING"
REPORT = "SELECT * FROM payment_reports WHERE role = {0} ORDER BY email"


def _slots(sql: str) -> int:
    """How many ``{n}`` parameter slots the statement has (``{{`` is a literal brace)."""
    return sql.count("{") - 2 * sql.count("{{")


@cache
def pg(sql: str) -> str:
    return sql.format(*["%s"] * _slots(sql))


class PsycopgAsync:
    name = "psycopg_async"

    async def open(self, url: str, pool: int) -> None:
        self.pool = AsyncConnectionPool(url, min_size=pool, max_size=pool, open=False,
                                        kwargs={"autocommit": True})
        await self.pool.open(wait=True)

    async def close(self) -> None:
        await self.pool.close()

    def cursor(self, at: tuple[datetime, uuid.UUID]) -> Any:
        return at

    async def _all(self, sql: str, *args: Any) -> list[Any]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(pg(sql), args, prepare=True)
            return await cur.fetchall()

    async def w1(self, user_id: uuid.UUID) -> Any:
        async with self.pool.connection() as conn:
            cur = await conn.execute(pg(USER), (user_id,), prepare=True)
            return await cur.fetchone()

    async def w2(self, user_id: uuid.UUID) -> Any:
        async with self.pool.connection() as conn, conn.pipeline():
            user = await conn.execute(pg(USER_PROFILE), (user_id,), prepare=True)
            payments = await conn.execute(pg(NEWEST), (user_id,), prepare=True)
        return await user.fetchone(), await payments.fetchall()

    async def w3(self, user_id: uuid.UUID, cursor: Any) -> Any:
        return await self._all(AFTER, user_id, *cursor)

    async def w4_first(self) -> Any:
        return await self._all(FIRST)

    async def w4_keyset(self, cursor: Any) -> Any:
        return await self._all(KEYSET, *cursor)

    async def w4_offset(self, offset: int) -> Any:
        return await self._all(OFFSET, offset)

    async def w5(self, user_id: uuid.UUID) -> Any:
        return (await self._all(CREATE_PAYMENT, user_id, Decimal("9.99")))[0]

    async def w6(self, email: str, password_hash: str) -> Any:
        async with self.pool.connection() as conn, conn.transaction():
            user = await (await conn.execute(pg(CREATE_USER), (email, password_hash),
                                             prepare=True)).fetchone()
            assert user is not None
            profile = await conn.execute(pg(CREATE_PROFILE), (user[0],), prepare=True)
            return user, await profile.fetchone()

    async def w7(self, rows: list[tuple[str, str, str, str]]) -> int:
        """The best COPY-based load: COPY into a staging table, then one INSERT ... SELECT."""
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute(STAGE)
            async with conn.cursor() as cur:
                async with cur.copy("COPY stage FROM STDIN") as copy:
                    for row in rows:
                        await copy.write_row(row)
                await cur.execute(MERGE)
                return cur.rowcount

    async def w8(self, role: str) -> Any:
        return await self._all(REPORT, role)


@cache
def _apg(sql: str) -> str:
    return sql.format(*[f"${i + 1}" for i in range(_slots(sql))])


class Asyncpg:
    name = "asyncpg"

    async def open(self, url: str, pool: int) -> None:
        self.pool = await asyncpg.create_pool(url, min_size=pool, max_size=pool)

    async def close(self) -> None:
        await self.pool.close()

    def cursor(self, at: tuple[datetime, uuid.UUID]) -> Any:
        return at

    async def w1(self, user_id: uuid.UUID) -> Any:
        return await self.pool.fetchrow(_apg(USER), user_id)

    async def w2(self, user_id: uuid.UUID) -> Any:
        async with self.pool.acquire() as conn:
            return (await conn.fetchrow(_apg(USER_PROFILE), user_id),
                    await conn.fetch(_apg(NEWEST), user_id))

    async def w3(self, user_id: uuid.UUID, cursor: Any) -> Any:
        return await self.pool.fetch(_apg(AFTER), user_id, *cursor)

    async def w4_first(self) -> Any:
        return await self.pool.fetch(FIRST)

    async def w4_keyset(self, cursor: Any) -> Any:
        return await self.pool.fetch(_apg(KEYSET), *cursor)

    async def w4_offset(self, offset: int) -> Any:
        return await self.pool.fetch(_apg(OFFSET), offset)

    async def w5(self, user_id: uuid.UUID) -> Any:
        return await self.pool.fetchrow(_apg(CREATE_PAYMENT), user_id, Decimal("9.99"))

    async def w6(self, email: str, password_hash: str) -> Any:
        async with self.pool.acquire() as conn, conn.transaction():
            user = await conn.fetchrow(_apg(CREATE_USER), email, password_hash)
            return user, await conn.fetchrow(_apg(CREATE_PROFILE), user["id"])

    async def w7(self, rows: list[tuple[str, str, str, str]]) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(STAGE)
            await conn.copy_records_to_table("stage", records=rows)
            status = await conn.execute(MERGE)
            return int(status.split()[-1])

    async def w8(self, role: str) -> Any:
        return await self.pool.fetch(_apg(REPORT), role)
