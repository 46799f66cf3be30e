"""Borrowing pooled connections: for one read, for one write method, or for a transaction.

Plain classes rather than generator-based context managers: this is the hottest path of the
package, and ``@asynccontextmanager`` costs measurably more per call.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from shared_db.errors_db import translate, translate_error
from shared_db.sql import Executor, QueryHooks

if TYPE_CHECKING:
    from shared_db.transaction import Transaction


async def open_transaction(stack: AsyncExitStack, pool: AsyncConnectionPool[Any],
                           ) -> AsyncConnection[Any]:
    """A pooled connection with a transaction begun, both released by ``stack``: the
    transaction commits when ``stack`` closes without an error, else rolls back."""
    return await _begun(stack, pool, end_on_exit=True)


async def begin(stack: AsyncExitStack, pool: AsyncConnectionPool[Any]) -> AsyncConnection[Any]:
    """A pooled connection inside ``BEGIN``, released by ``stack``; the caller ends it.

    Unlike ``open_transaction`` nothing commits on exit: a Transaction decides how each of its
    databases ends (plain COMMIT, or two-phase when there are several).
    """
    return await _begun(stack, pool, end_on_exit=False)


async def _begun(stack: AsyncExitStack, pool: AsyncConnectionPool[Any], *,
                 end_on_exit: bool) -> AsyncConnection[Any]:
    # A connection that died idle in the pool (the server restarted) fails its BEGIN: nothing
    # was done on it, so it goes back to the pool, which drops it, and one more is tried.
    for attempt in (1, 2):
        inner = AsyncExitStack()
        conn: AsyncConnection[Any] = await inner.enter_async_context(pool.connection())
        try:
            if end_on_exit:
                await inner.enter_async_context(conn.transaction())
            else:
                await conn.execute("BEGIN")
        except psycopg.OperationalError:
            await inner.aclose()
            if attempt == 2 or not conn.broken:
                raise
            continue
        stack.push_async_exit(inner)
        return conn
    raise AssertionError("unreachable")


class Joined:
    """A statement inside a Transaction: its connection, taken on first use."""

    __slots__ = ("_service", "_tx")

    def __init__(self, tx: Transaction, service: str) -> None:
        self._tx, self._service = tx, service

    async def __aenter__(self) -> Executor:
        return await self._tx._executor_for(self._service)

    async def __aexit__(self, *exc: object) -> None:
        return None


class ReadCall:
    """Borrow a pooled autocommit connection for one statement."""

    __slots__ = ("_conn", "_hooks", "_pool", "_prepare")

    def __init__(self, pool: AsyncConnectionPool[Any], hooks: QueryHooks, prepare: bool) -> None:
        self._pool, self._hooks, self._prepare = pool, hooks, prepare
        self._conn: AsyncConnection[Any] | None = None

    async def __aenter__(self) -> Executor:
        try:
            self._conn = await self._pool.getconn()
        except (psycopg.Error, PoolTimeout) as exc:
            raise translate_error(exc) from exc
        return Executor(self._conn, self._hooks, self._prepare, self._replace)

    async def _replace(self) -> AsyncConnection[Any]:
        # The connection died while idle in the pool (a server restart): hand it back, so the
        # pool drops it, and take another. Safe: an autocommit read that failed did nothing.
        if self._conn is not None:
            await self._pool.putconn(self._conn)
        self._conn = None
        self._conn = await self._pool.getconn()
        return self._conn

    async def __aexit__(self, *exc: object) -> None:
        if self._conn is not None:
            await self._pool.putconn(self._conn)


class WriteCall:
    """Borrow a pooled connection and run one write method in a transaction of its own."""

    def __init__(self, pool: AsyncConnectionPool[Any], hooks: QueryHooks, prepare: bool) -> None:
        self._pool, self._hooks, self._prepare = pool, hooks, prepare
        self._stack = AsyncExitStack()

    async def __aenter__(self) -> Executor:
        with translate():
            conn = await open_transaction(self._stack, self._pool)
        return Executor(conn, self._hooks, self._prepare)

    async def __aexit__(self, *exc: Any) -> None:
        with translate():
            await self._stack.__aexit__(*exc)
