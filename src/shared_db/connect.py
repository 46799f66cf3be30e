"""Plain psycopg connections built from settings, and what makes a failed attempt readable.

Apart from the engines (``engine``) so that commands which only read a little (``migrate
status``) connect without loading SQLAlchemy.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import TupleRow

from shared_db.errors import DatabaseUnavailableError
from shared_db.errors_db import unreachable
from shared_db.url import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_KEEPALIVES,
    DEFAULT_TCP_USER_TIMEOUT,
    ConnectionSettings,
)


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
    if not any(k.startswith("keepalives") for k in conn.libpq):
        args.update(DEFAULT_KEEPALIVES)
    if "tcp_user_timeout" not in conn.libpq:
        args["tcp_user_timeout"] = DEFAULT_TCP_USER_TIMEOUT
    if conn.pgbouncer:
        # Transaction-mode PgBouncer hands each transaction a different server connection, so
        # a statement prepared on one may not exist on the next.
        args["prepare_threshold"] = None
    if conn.schema:
        # After the URL's own options (which this keyword would otherwise replace whole), so
        # the schema's search_path is the one that holds.
        own = conn.libpq.get("options")
        args["options"] = (f"{own} " if own else "") + f"-c search_path={conn.schema}"
    return args


def connect_direct(conn: ConnectionSettings, **kwargs: Any) -> psycopg.Connection[TupleRow]:
    """A plain psycopg connection (for COPY, snapshots, admin statements) that gives up within
    ``connect_timeout``; an unreachable server is ``DatabaseUnavailableError``. The URL's
    ``schema`` is its search path, as on the pools: the version tables and the data are there.
    """
    defaults = {k: v for k, v in connect_args(conn).items()
                if k in ("connect_timeout", "options", "tcp_user_timeout")
                or k.startswith("keepalives")}
    if "options" in defaults and "options" in kwargs:
        kwargs = {**kwargs, "options": f"{defaults['options']} {kwargs['options']}"}
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
