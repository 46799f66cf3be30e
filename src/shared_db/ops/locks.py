"""Lock-aware migration steps: a ``lock_timeout`` on every step, and retries with back-off.

A DDL statement waiting for its lock queues every later query on the table behind it, so a
migration that waits on a long transaction stops all traffic. With ``lock_timeout`` the step
gives up after a bounded wait, rolls back, and lets the queue drain while it sleeps; then it
tries again, waiting twice as long between tries each time.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from shared_db.config import Settings
from shared_db.errors import LockTimeoutError

LOCK_NOT_AVAILABLE = "55P03"
SET_LOCK_TIMEOUT = text("SELECT set_config('lock_timeout', :value, :local)")
T = TypeVar("T")


@dataclass(frozen=True)
class LockPolicy:
    """How long one try waits for a lock, how often a step is tried again, the first pause."""

    timeout: float = 5.0
    retries: int = 5
    backoff: float = 0.5
    max_backoff: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> LockPolicy:
        return cls(timeout=settings.lock_timeout, retries=settings.lock_retries)

    @property
    def setting(self) -> str:
        return f"{max(1, round(self.timeout * 1000))}ms"


def set_lock_timeout(conn: Connection, policy: LockPolicy, local: bool) -> None:
    """``lock_timeout`` for the transaction (``local``) or the session."""
    conn.execute(SET_LOCK_TIMEOUT, {"value": policy.setting, "local": local})


@contextmanager
def session_lock_timeout(conn: Connection, policy: LockPolicy) -> Iterator[None]:
    """``lock_timeout`` on the session for the block (steps that run outside a transaction)."""
    set_lock_timeout(conn, policy, local=False)
    conn.commit()
    try:
        yield
    finally:
        # A connection lost in the block cannot be reset; the error that ended it must show.
        with contextlib.suppress(SQLAlchemyError):
            if conn.in_transaction():
                conn.rollback()
            conn.execute(text("RESET lock_timeout"))
            conn.commit()


def driver_error(exc: BaseException) -> DBAPIError | None:
    """The driver's error behind ``exc``: Alembic's clean-up after a lost connection raises
    its own error from a ``finally``, hiding the server's reply in the exception context."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, DBAPIError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def lock_not_available(exc: BaseException) -> bool:
    found = driver_error(exc)
    return found is not None and getattr(found.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE


def with_retries(attempt: Callable[[], T], policy: LockPolicy, what: str,
                 on_wait: Callable[[int, float], None] | None = None) -> T:
    """``attempt()``, tried again after a lock timeout, ``policy.retries`` times at most;
    ``what`` says what it does in the error (``apply auth:2026..._x``).

    ``attempt`` must leave nothing behind when it fails (one transaction, rolled back).

    Raises:
        LockTimeoutError: the last try timed out too.
    """
    pause = policy.backoff
    for tries in range(1, policy.retries + 2):
        try:
            return attempt()
        except SQLAlchemyError as exc:
            if not lock_not_available(exc):
                raise
            if tries > policy.retries:
                raise LockTimeoutError(
                    f"could not {what}: a lock was not granted within lock_timeout "
                    f"{policy.timeout:g} s in {tries} tries (another transaction holds the "
                    "table; SHARED_DB_LOCK_TIMEOUT, SHARED_DB_LOCK_RETRIES); the database was "
                    "left at the migration before it") from exc
        if on_wait:
            on_wait(tries, pause)
        time.sleep(pause)
        pause = min(pause * 2, policy.max_backoff)
    raise AssertionError("unreachable")
