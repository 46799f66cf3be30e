"""Pool connections that keep trying for a few seconds when the server is briefly not there.

When a primary fails over, or restarts, the pool's connections die and psycopg_pool refills it
in the background, backing off 1 s, 2 s, 4 s ... after each failed attempt. A failover takes
2-4 s, so the refill often came only a second or more after the new primary was up, and every
call waited for it. The pool's connections are of this class instead: one attempt from the
pool's point of view keeps connecting every 0.1 s for up to ``RETRY_FOR`` seconds, and the
first moment a server accepts (through a multi-host URL, the new primary), the pool has its
connection. A wrong password is not retried: it will not get better.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Self

import psycopg

from shared_db.errors_db import AUTH_FAILED, connection_cause

RETRY_EVERY = 0.1
RETRY_FOR = 10.0
FAILED_AT: dict[str, tuple[float, str]] = {}
"""Per conninfo, when a connection attempt last failed (``time.monotonic``) and why
(``connection_cause``): the pool's callers read it to tell an unreachable server from a full
pool."""


class RetryingConnection(psycopg.AsyncConnection[Any]):
    """``AsyncConnection`` whose ``connect`` retries while the server refuses or is starting."""

    @classmethod
    async def connect(cls, conninfo: str = "", **kwargs: Any) -> Self:
        give_up = time.monotonic() + RETRY_FOR
        while True:
            try:
                return await super().connect(conninfo, **kwargs)
            except psycopg.OperationalError as exc:
                FAILED_AT[conninfo] = (time.monotonic(), connection_cause(exc))
                if (connection_cause(exc) == AUTH_FAILED
                        or time.monotonic() + RETRY_EVERY > give_up):
                    raise
            await asyncio.sleep(RETRY_EVERY)
