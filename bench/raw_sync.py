"""Hand-written SQL on sync psycopg 3: prepared statements, a ``ConnectionPool`` of the same size.

The sync driver is the floor for a single call: no event loop between the socket and the code.
Its methods block; the harness calls them from its own thread for the single-connection
workloads (nothing else runs meanwhile) and from ``plan.workers`` OS threads for C1/C2. The
statements are the async contenders' own (``bench/raw.py``), so only the driver differs.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from psycopg_pool import ConnectionPool

from bench.raw import (
    AFTER,
    CREATE_PAYMENT,
    CREATE_PROFILE,
    CREATE_USER,
    FIRST,
    KEYSET,
    MERGE,
    NEWEST,
    OFFSET,
    REPORT,
    STAGE,
    USER,
    USER_PROFILE,
    pg,
)


class PsycopgSync:
    name = "psycopg_sync"
    blocking = True  # the harness times it on threads rather than awaiting it

    # open and close are coroutines only to share the harness's set-up path; they block the
    # event loop, untimed, while the pool connects.
    async def open(self, url: str, pool: int) -> None:
        self.pool = ConnectionPool(url, min_size=pool, max_size=pool, open=False,
                                   kwargs={"autocommit": True})
        self.pool.open(wait=True)

    async def close(self) -> None:
        self.pool.close()

    def cursor(self, at: tuple[datetime, uuid.UUID]) -> Any:
        return at

    def _all(self, sql: str, *args: Any) -> list[Any]:
        with self.pool.connection() as conn:
            return conn.execute(pg(sql), args, prepare=True).fetchall()

    def w1(self, user_id: uuid.UUID) -> Any:
        with self.pool.connection() as conn:
            return conn.execute(pg(USER), (user_id,), prepare=True).fetchone()

    def w2(self, user_id: uuid.UUID) -> Any:
        with self.pool.connection() as conn, conn.pipeline():
            user = conn.execute(pg(USER_PROFILE), (user_id,), prepare=True)
            payments = conn.execute(pg(NEWEST), (user_id,), prepare=True)
        return user.fetchone(), payments.fetchall()

    def w3(self, user_id: uuid.UUID, cursor: Any) -> Any:
        return self._all(AFTER, user_id, *cursor)

    def w4_first(self) -> Any:
        return self._all(FIRST)

    def w4_keyset(self, cursor: Any) -> Any:
        return self._all(KEYSET, *cursor)

    def w4_offset(self, offset: int) -> Any:
        return self._all(OFFSET, offset)

    def w5(self, user_id: uuid.UUID) -> Any:
        return self._all(CREATE_PAYMENT, user_id, Decimal("9.99"))[0]

    def w6(self, email: str, password_hash: str) -> Any:
        with self.pool.connection() as conn, conn.transaction():
            user = conn.execute(pg(CREATE_USER), (email, password_hash), prepare=True).fetchone()
            assert user is not None
            profile = conn.execute(pg(CREATE_PROFILE), (user[0],), prepare=True)
            return user, profile.fetchone()

    def w7(self, rows: list[tuple[str, str, str, str]]) -> int:
        """The async contenders' COPY-based load: a staging table, one INSERT ... SELECT."""
        with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute(STAGE)
            with cur.copy("COPY stage FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cur.execute(MERGE)
            return cur.rowcount

    def w8(self, role: str) -> Any:
        return self._all(REPORT, role)
