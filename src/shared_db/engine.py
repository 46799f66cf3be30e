"""Engines built from settings (never at import time), with connection errors made readable."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import TupleRow
from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from shared_db.errors import DatabaseUnavailableError
from shared_db.errors_db import unreachable
from shared_db.url import ConnectionSettings

DEFAULT_CONNECT_TIMEOUT = 5
"""Seconds libpq waits for a server when the URL sets no ``connect_timeout``: without one it
waits for the operating system to give up on TCP, minutes for a server that never answers."""


def connect_timeout(conn: ConnectionSettings) -> int:
    """The URL's ``connect_timeout``, or the default."""
    return int(conn.libpq.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT))


def unavailable(conn: ConnectionSettings, exc: BaseException) -> DatabaseUnavailableError:
    """The ``DatabaseUnavailableError`` for a failed attempt to connect to ``conn``."""
    password = conn.url.password
    return unreachable(conn.safe_url(), exc, str(password) if password else None)


def connect_args(conn: ConnectionSettings) -> dict[str, Any]:
    """psycopg connection arguments implied by the URL's Prisma-style parameters."""
    args: dict[str, Any] = {}
    if "connect_timeout" not in conn.libpq:
        args["connect_timeout"] = DEFAULT_CONNECT_TIMEOUT
    if conn.pgbouncer:
        # Transaction-mode PgBouncer hands each transaction a different server connection, so
        # a statement prepared on one may not exist on the next.
        args["prepare_threshold"] = None
    if conn.schema:
        args["options"] = f"-c search_path={conn.schema}"
    return args


def sync_engine(conn: ConnectionSettings) -> Engine:
    """An engine for migrations and operations: no pool, one connection per command."""
    return create_engine(conn.url, poolclass=NullPool, connect_args=connect_args(conn))


def async_engine(conn: ConnectionSettings) -> AsyncEngine:
    """The pooled async engine service code uses, sized from the URL."""
    return create_async_engine(
        conn.url,
        pool_size=conn.pool_size,
        max_overflow=0,
        pool_timeout=conn.pool_timeout,
        pool_pre_ping=False,
        connect_args=connect_args(conn),
    )


def connect_direct(conn: ConnectionSettings, **kwargs: Any) -> psycopg.Connection[TupleRow]:
    """A plain psycopg connection (for COPY, snapshots, admin statements) that gives up within
    ``connect_timeout``; an unreachable server is ``DatabaseUnavailableError``."""
    defaults = {k: v for k, v in connect_args(conn).items() if k == "connect_timeout"}
    try:
        return psycopg.connect(conn.libpq_url(), **{**defaults, **kwargs})
    except psycopg.OperationalError as exc:
        raise unavailable(conn, exc) from exc


async def reach(conn: ConnectionSettings, kwargs: dict[str, Any]) -> None:
    """Connect once with ``kwargs`` and hang up.

    Raises:
        DatabaseUnavailableError: refused, timed out, authentication failed, ... (the cause).
    """
    try:
        probe = await psycopg.AsyncConnection.connect(conn.libpq_url(), **kwargs)
    except psycopg.OperationalError as exc:
        raise unavailable(conn, exc) from exc
    await probe.close()


@contextmanager
def connect_to(conn: ConnectionSettings) -> Iterator[Connection]:
    """A connection for one operation; an unreachable server is ``DatabaseUnavailableError``."""
    try:
        connection = sync_engine(conn).connect()
    except OperationalError as exc:
        raise unavailable(conn, exc) from exc
    with connection:
        yield connection
