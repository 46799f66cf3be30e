"""The pools a ``Database`` opens (``open_pool``), and how they differ from psycopg_pool's.

The pool hands out the connection returned last (LIFO), not the one idle longest (FIFO).

psycopg_pool queues its idle connections first in, first out, so consecutive calls rotate
through every connection of the pool, and each lands on a server backend that has slept since
its last turn. Taking the most recently returned connection keeps a few backends hot and lets
the rest idle, which is why PgBouncer reuses its server connections in the same order by
default (``server_round_robin = 0``). Measured with server and client pinned to different CPUs,
one caller at a time, a pool of 8: raw psycopg through psycopg_pool took 270 µs per point read,
200 µs through this pool, 185 µs on one connection outside any pool; shared-db's ``users.get``,
``users.eager`` and ``payments.create`` took 6-7 % less than with the FIFO pool (A/B in one
process: 242 against 257 µs, 479 against 515, 424 against 454).

The connections idle longest are still at the other end, where the pool's ``max_idle`` shrink
takes them from; everything else (waiting clients, checks, refills, stats) is psycopg_pool's. A
connection left idle at the far end under light load is still replaced within the pool's
``max_lifetime`` (an hour), and checked for a server-side end before each use
(``shared_db.calls``).

Each new connection also learns the guide's enums, read as the Python enums. psycopg's enum
loader is a Python method per value (a type check, a copy to ``bytes``, a dict lookup); here the
loader's ``load`` is the lookup itself, a dict's ``__getitem__`` called from C, with the label
as psycopg hands it over (a read-only memoryview hashes and compares as the bytes it holds).
A page of 20 payments carries 40 enum values: that cut its client CPU by 8 % (A/B, 457 against
420 µs on a slow moment of this machine).
"""

from __future__ import annotations

import time
from enum import Enum
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.pq import Format
from psycopg.types.enum import EnumInfo, register_enum
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from shared_db.connect import connect_args, reach
from shared_db.enums import PaymentStatus, PaymentType, UserRole
from shared_db.errors import DatabaseUnavailableError, PoolTimeoutError
from shared_db.errors_db import translate
from shared_db.reconnect import FAILED_AT, RetryingConnection
from shared_db.url import ConnectionSettings

ENUMS = (UserRole, PaymentStatus, PaymentType)


# The server role a URL's target_session_attrs requires of every connection. libpq checks it
# only when connecting; a pooled connection keeps its server through a failover (a standby
# promoted under a "standby" pool). Checkout compares the server's reported in_hot_standby
# (PostgreSQL 14+) with it. prefer-standby requires nothing: its connections are recycled
# instead, so one left on the primary goes back to a standby that returned.
REQUIRED_ROLE = {"read-write": "primary", "primary": "primary", "standby": "standby",
                 "read-only": "standby"}
PREFERRED_LIFETIME = 30.0
"""Seconds a ``prefer-standby`` pool's connection lives, so one that fell back to the primary
while no standby was up goes back to a standby within this long of one returning."""


class LifoPool(AsyncConnectionPool[AsyncConnection[Any]]):
    """``AsyncConnectionPool`` whose checkout takes the most recently returned connection.

    ``role`` is the server role ("primary", "standby") its URL's ``target_session_attrs``
    requires, or None when any server will do (``any``, ``prefer-standby``)."""

    role: str | None = None

    async def getconn(self, timeout: float | None = None) -> AsyncConnection[Any]:
        started = time.monotonic()
        try:
            return await super().getconn(timeout)
        except PoolTimeout:
            failed_at, cause = FAILED_AT.get(str(self.conninfo), (0.0, ""))
            if failed_at < started:
                raise  # the pool is full: PoolTimeoutError, raise connection_limit
            # The pool tried to connect while this caller waited, and could not: the server
            # is down, and PoolTimeoutError's advice (a larger pool) would mislead. Nothing
            # was sent, so this is the error of an unreachable server.
            raise psycopg.OperationalError(
                f"no connection within pool_timeout: the server could not be reached "
                f"({cause})") from None

    async def _get_ready_connection(self, timeout: float | None,
                                    ) -> AsyncConnection[Any] | None:
        if timeout is not None and timeout <= 0.0:
            raise PoolTimeout()
        if not self._pool:
            return await super()._get_ready_connection(timeout)  # the pool's waiting rules
        conn = self._pool.pop()
        if len(self._pool) < self._nconns_min:
            self._nconns_min = len(self._pool)
        return conn


class _Labels(dict[bytes, Enum]):
    """An enum's members by label; a label the Python enum lacks fails as psycopg's would."""

    kind: type[Enum]

    def __missing__(self, label: bytes) -> Enum:
        raise psycopg.DataError(f"bad member for enum {self.kind.__qualname__}: "
                                f"{bytes(label).decode(errors='replace')!r}")


def _direct(base: type[Any], kind: type[Enum]) -> type[Any]:
    labels = _Labels(base._load_map)
    labels.kind = kind

    class DirectEnumLoader(base):  # type: ignore[misc]
        def __init__(self, oid: int, context: Any = None) -> None:
            super().__init__(oid, context)
            self.load = labels.__getitem__

    return DirectEnumLoader


async def configure(conn: AsyncConnection[Any]) -> None:
    """Per new connection: room for every prepared statement; the guide's enums as Python enums."""
    conn.prepared_max = 256
    for kind in ENUMS:
        info = await EnumInfo.fetch(conn, f'"{kind.__name__}"')
        if info is None:
            continue
        register_enum(info, conn, kind)
        for fmt in (Format.TEXT, Format.BINARY):
            base = conn.adapters.get_loader(info.oid, fmt)
            if base is not None:
                conn.adapters.register_loader(info.oid, _direct(base, kind))


async def open_pool(conn: ConnectionSettings) -> LifoPool:
    """An open pool for ``conn``, its first connections made; the server unreachable is
    ``DatabaseUnavailableError``."""
    kwargs: dict[str, Any] = {"autocommit": True, **connect_args(conn)}
    # The pool would retry an unreachable server in the background, logging each failure,
    # and end in PoolTimeout: one attempt of our own fails in connect_timeout, with its cause.
    await reach(conn, kwargs)
    attrs = conn.libpq.get("target_session_attrs", "any")
    pool = LifoPool(
        conn.libpq_url(), min_size=min(2, conn.pool_size), max_size=conn.pool_size,
        timeout=conn.pool_timeout, kwargs=kwargs, configure=configure, open=False,
        connection_class=RetryingConnection, name=f"shared-db {conn.database}",
        max_lifetime=PREFERRED_LIFETIME if attrs == "prefer-standby" else 3600.0)
    pool.role = REQUIRED_ROLE.get(attrs)
    wait = max(conn.pool_timeout, 10.0)
    try:
        with translate():
            await pool.open(wait=True, timeout=wait)
    except PoolTimeoutError as exc:  # the server went away since `reach`
        await pool.close()
        raise DatabaseUnavailableError(
            f"cannot connect to {conn.safe_url()}: the pool could not open its first "
            f"connections within {wait:g} s") from exc
    return pool
