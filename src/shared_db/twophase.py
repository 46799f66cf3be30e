"""Two-phase commit for a transaction that wrote to more than one service database.

In the per-service topology a unit of work can touch several databases (a user in ``auth``, its
profile in ``profile``, its audit row in ``admin``). Committing them one after another would let
a crash between two COMMITs leave half of it behind, so each part is first made durable with
``PREPARE TRANSACTION`` and only then committed with ``COMMIT PREPARED``.

No coordinator log is needed, because the order is fixed and written into the identifiers: part
``i`` of ``n`` of global transaction ``g`` is prepared as ``shared-db:g:i:n``. Parts are prepared
in order 0..n-1, committed in order 0..n-1, and rolled back (when a PREPARE fails) in reverse.
So *part 0 is the decision*: while it is still prepared nothing has been committed and the whole
transaction may be rolled back; once it is gone while later parts remain, the commit phase had
begun and the rest must be committed. ``recover`` applies exactly that rule to what a crashed
coordinator left in ``pg_prepared_xacts``.

The ``auth`` database is always the last part, so a new user becomes visible only when
everything written with it (profile, audit row) is committed: if the coordinator dies between
the COMMITs, what is visible is at worst a profile whose user is still in doubt, never a user
without the rows that belong to it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.pq import TransactionStatus

from shared_db import tracing
from shared_db.errors import (
    DatabaseUnavailableError,
    InDoubtError,
    SharedDbError,
    TransactionAbortedError,
)
from shared_db.errors_db import first_line, translate_error
from shared_db.sql import Executor

log = logging.getLogger("shared_db.twophase")
PREFIX = "shared-db"

_PREPARE = sql.SQL("PREPARE TRANSACTION {}")
_COMMIT = sql.SQL("COMMIT PREPARED {}")
_ROLLBACK = sql.SQL("ROLLBACK PREPARED {}")


def part_id(global_id: str, index: int, count: int) -> str:
    return f"{PREFIX}:{global_id}:{index}:{count}"


@dataclass(frozen=True)
class Part:
    """One prepared transaction found on a database: which global transaction, which part."""

    gid: str
    global_id: str
    index: int
    count: int

    @classmethod
    def parse(cls, gid: str) -> Part | None:
        pieces = gid.split(":")
        if len(pieces) != 4 or pieces[0] != PREFIX:
            return None
        try:
            return cls(gid, pieces[1], int(pieces[2]), int(pieces[3]))
        except ValueError:
            return None


Fresh = Callable[[], AbstractAsyncContextManager[AsyncConnection[Any]]]
"""A new connection to one part's database, to settle that part when its own was lost."""


async def commit(executors: Sequence[Executor], fresh: Sequence[Fresh] | None = None,
                 in_doubt: Callable[[int], object] | None = None) -> None:
    """Prepare every part, then commit them in order; on a failed PREPARE roll all back.

    ``in_doubt``: told how many parts are left prepared for recovery, whatever the outcome:
    those of a committed transaction, every part of one in doubt, and those a rollback could
    not settle (part 0 kept prepared, a part that may have been).

    ``fresh``: per part, a way to reach its database again. A part whose connection is lost
    during the commit is then settled at once on a new connection instead of waiting for
    recovery: committed when it is still prepared (its COMMIT PREPARED never took effect),
    or rolled back during the prepare phase.

    Raises:
        InDoubtError: the first COMMIT PREPARED was lost and could not be settled here, so the
            outcome is not known; ``recover`` settles it (all or nothing) from the servers.
    """
    parts = {"shared_db.two_phase.parts": len(executors)}
    with tracing.span("shared_db.two_phase_commit", **parts):
        await _commit(executors, fresh, in_doubt or (lambda _: None))


async def _commit(executors: Sequence[Executor], fresh: Sequence[Fresh] | None,
                  in_doubt: Callable[[int], object]) -> None:
    global_id, count = uuid.uuid4().hex, len(executors)
    ids = [part_id(global_id, i, count) for i in range(count)]
    left = 0
    try:
        for i, ex in enumerate(executors):
            done = await ex.command("twophase.prepare", _PREPARE.format(sql.Literal(ids[i])))
            if done == "ROLLBACK":  # the part had been aborted: PREPARE rolled it back
                raise TransactionAbortedError(
                    f"transaction {global_id}: part {i} of {count} had been aborted by a "
                    "failed statement, so nothing was committed")
    except BaseException:
        if kept := await _abort(executors, ids, fresh):
            in_doubt(kept)
        raise
    cancels: list[BaseException] = []
    for i, ex in enumerate(executors):
        try:
            await _whole(ex.command("twophase.commit", _COMMIT.format(sql.Literal(ids[i]))),
                         cancels)
        except Exception as exc:
            if ex.connection.broken and fresh is not None and await _commit_elsewhere(
                    fresh[i], ids[i]):
                continue
            if i == 0:
                in_doubt(count)
                raise InDoubtError(
                    f"transaction {global_id}: the commit of its first part failed "
                    f"({first_line(exc)}); `shared-db db recover` settles it") from exc
            # Part 0 is committed, so the transaction is: the rest is recovery's to finish.
            log.warning("transaction %s: part %d of %d stays prepared until recovery: %s",
                        global_id, i, count, first_line(exc))
            left += 1
    if left:  # committed parts whose COMMIT PREPARED failed after part 0's succeeded
        in_doubt(left)
    if cancels:  # told once every part is committed
        raise cancels[0]


async def _whole(step: Awaitable[object], cancels: list[BaseException]) -> None:
    """``step`` run to its end even when the caller is cancelled meanwhile (a request's
    timeout): once PREPARE has succeeded everywhere the transaction is decided, and a
    cancellation between two COMMIT PREPAREDs left some parts committed and the rest holding
    their locks until recovery. The cancellation is kept in ``cancels`` for the caller."""
    task = asyncio.ensure_future(step)
    while True:
        try:
            await asyncio.shield(task)
            return
        except asyncio.CancelledError as exc:
            if task.cancelled():  # the step itself was cancelled (the loop is closing)
                raise
            cancels.append(exc)  # the caller was: wait for the step again


SETTLE_TRIES = 3
"""Connections tried to settle a part: the pooled one taken may have died with the first (a
server that ended every session of the database), which only another connection can tell."""


async def _commit_elsewhere(fresh: Fresh, gid: str) -> bool:
    # Still prepared means its COMMIT PREPARED never took effect; gone means it did (only a
    # coordinator commits a part this young), so asking again on another connection after a
    # lost one is safe. One held by its old backend is "busy": in doubt.
    lost: BaseException | None = None
    for _ in range(SETTLE_TRIES):
        try:
            async with fresh() as conn:
                cursor = await conn.execute("SELECT 1 FROM pg_prepared_xacts WHERE gid = %s",
                                            (gid,))
                if await cursor.fetchone() is not None:
                    await conn.execute(_COMMIT.format(sql.Literal(gid)))
                return True
        except (psycopg.OperationalError, DatabaseUnavailableError) as exc:
            lost = exc
        except (psycopg.Error, SharedDbError) as exc:
            lost = exc
            break
    assert lost is not None
    log.warning("part %s not settled on a new connection: %s", gid, first_line(lost))
    return False


async def _abort(executors: Sequence[Executor], ids: list[str],
                 fresh: Sequence[Fresh] | None) -> int:
    """Roll every part back; how many parts are (or may be) left prepared for recovery."""
    # Reverse order keeps part 0 prepared longest: if this is cut short, recovery still sees
    # part 0 and rolls back the rest. For the same reason part 0 stays prepared when a later
    # part might be prepared still: recovery commits parts whose part 0 is gone.
    uncertain, unsettled = False, 0
    for i in reversed(range(len(executors))):
        ex = executors[i]
        if i == 0 and uncertain:
            log.warning("part 0 of %s stays prepared, so recovery rolls back all", ids[0])
            return unsettled + 1
        if ex.connection.broken:
            pid = ex.connection.pgconn.backend_pid
            if fresh is None or not await _rollback_elsewhere(fresh[i], ids[i], pid):
                uncertain = True
                unsettled += 1
            continue
        pid = ex.connection.pgconn.backend_pid
        try:
            # Out of its transaction block: its PREPARE went through, or failed and so was
            # rolled back by the server (then the id is unknown, and nothing is left).
            if ex.connection.info.transaction_status == TransactionStatus.IDLE:
                await ex.command("twophase.rollback", _ROLLBACK.format(sql.Literal(ids[i])))
            else:
                await ex.connection.execute("ROLLBACK")
        except (psycopg.Error, SharedDbError) as exc:
            if _never_prepared(exc) or (ex.connection.broken and fresh is not None
                                        and await _rollback_elsewhere(fresh[i], ids[i], pid)):
                continue
            uncertain = True
            unsettled += 1
            log.warning("rollback of part %d left to recovery: %s", i, first_line(exc))
    return unsettled


def _never_prepared(exc: BaseException) -> bool:
    if isinstance(exc, SharedDbError):
        return exc.driver_error == psycopg.errors.UndefinedObject.__name__
    return isinstance(exc, psycopg.errors.UndefinedObject)


async def _rollback_elsewhere(fresh: Fresh, gid: str, backend_pid: int) -> bool:
    """Is the part certainly not prepared now? Rolled back here, or never prepared by a
    backend that is gone (a live one may still finish its PREPARE)."""
    try:
        async with fresh() as conn:
            try:
                await conn.execute(_ROLLBACK.format(sql.Literal(gid)))
                return True
            except psycopg.errors.UndefinedObject:
                cursor = await conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s",
                                            (backend_pid,))
                return await cursor.fetchone() is None
    except (psycopg.Error, SharedDbError) as exc:
        log.warning("part %s not rolled back on a new connection: %s", gid, first_line(exc))
        return False


@dataclass(frozen=True)
class Settled:
    """What ``recover`` did with one global transaction."""

    global_id: str
    outcome: str  # "committed" or "rolled back"
    parts: int


async def prepared_parts(conn: AsyncConnection[Any], older_than: float,
                         ) -> list[tuple[Part, bool]]:
    """shared-db's prepared transactions on ``conn``'s database, each with whether it was
    prepared more than ``older_than`` seconds ago."""
    cursor = await conn.execute(
        "SELECT gid, prepared < now() - make_interval(secs => %s) FROM pg_prepared_xacts "
        "WHERE database = current_database() AND gid LIKE 'shared-db:%%'", (older_than,))
    return [(p, old) for gid, old in await cursor.fetchall() if (p := Part.parse(gid))]


async def recover(connections: Sequence[AsyncConnection[Any]],
                  older_than: float = 60.0) -> list[Settled]:
    """Finish or undo what crashed coordinators left prepared on these databases.

    ``connections``: one autocommit connection per database of the topology. Only
    transactions with a part prepared more than ``older_than`` seconds ago are touched, so a
    live coordinator in the middle of its commit is left alone.
    """
    found: dict[str, list[tuple[Part, AsyncConnection[Any]]]] = {}
    old: set[str] = set()
    for conn in connections:
        for part, aged in await prepared_parts(conn, older_than):
            found.setdefault(part.global_id, []).append((part, conn))
            if aged:
                old.add(part.global_id)
    # A transaction is settled with all of its parts or not at all: its parts were prepared
    # one after another, so part 0 can be past the age when the last is not, and rolling back
    # part 0 alone would make a later recovery commit the rest.
    found = {g: parts for g, parts in found.items() if g in old}
    settled = []
    for global_id, parts in sorted(found.items()):
        decided = all(part.index != 0 for part, _ in parts)
        statement = _COMMIT if decided else _ROLLBACK
        for part, conn in sorted(parts, key=lambda p: p[0].index, reverse=not decided):
            try:
                await conn.execute(statement.format(sql.Literal(part.gid)))
            except psycopg.errors.UndefinedObject:
                continue  # another recoverer settled this part first, the same way
            except psycopg.Error as exc:
                raise translate_error(exc) from exc
        settled.append(Settled(global_id, "committed" if decided else "rolled back",
                               len(parts)))
    return settled
