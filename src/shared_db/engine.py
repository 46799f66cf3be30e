"""Engines built from settings (never at import time), with connection errors made readable."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from shared_db.errors import DatabaseUnavailableError
from shared_db.errors_db import first_line
from shared_db.url import ConnectionSettings


def connect_args(conn: ConnectionSettings) -> dict[str, Any]:
    """psycopg connection arguments implied by the URL's Prisma-style parameters."""
    args: dict[str, Any] = {}
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


@contextmanager
def connect_to(conn: ConnectionSettings) -> Iterator[Connection]:
    """A connection for one operation; an unreachable server is ``DatabaseUnavailableError``."""
    try:
        connection = sync_engine(conn).connect()
    except OperationalError as exc:
        raise DatabaseUnavailableError(
            f"cannot connect to {conn.safe_url()}: {first_line(exc)}") from exc
    with connection:
        yield connection
