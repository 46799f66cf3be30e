"""Statements built once with SQLAlchemy, run straight through psycopg.

Repositories describe every query with SQLAlchemy constructs at import time; ``Query`` compiles
it once for the psycopg dialect. At run time an ``Executor`` sends the SQL text on a psycopg
connection as a server-side prepared statement (unless the URL says ``pgbouncer=true``) and
builds immutable records from the rows positionally: no ORM identity map, no lazy loading, no
per-call statement compilation. That is what keeps the hot paths close to hand-written psycopg.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import Context, ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.rows import RowMaker, args_row, tuple_row
from sqlalchemy.dialects.postgresql import psycopg as pg_psycopg
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql import ClauseElement

from shared_db.errors import DataAccessError, OutcomeUnknownError
from shared_db.errors_db import event_error, first_line, translate_error

T = TypeVar("T")
_DIALECT = pg_psycopg.dialect()  # type: ignore[no-untyped-call]


def attribution(name: str) -> str:
    """The comment naming the query, so ``pg_stat_statements`` and server logs tell which
    method sent a statement. It goes last: PostgreSQL 18's ``pg_stat_statements`` keeps a
    statement's text from its first token on, dropping a leading comment. The line break ends
    any ``--`` comment the statement might end with."""
    return f"\n/* shared_db:{name.replace('*/', '*_/')} */"


def _unreadable(name: str, exc: psycopg.Error) -> DataAccessError:
    """A result the client could not read: the statement ran, so this is no input error."""
    return DataAccessError(f"{name}: the result could not be read ({first_line(exc)})")


async def first(cursor: Any, name: str) -> Any:
    """The first row of an executed cursor, or None; ``name``: its query's."""
    try:
        return await cursor.fetchone()
    except psycopg.Error as exc:
        raise _unreadable(name, exc) from exc


async def every(cursor: Any, name: str) -> list[Any]:
    """Every row of an executed cursor; ``name``: its query's."""
    try:
        return await cursor.fetchall()  # type: ignore[no-any-return]
    except psycopg.Error as exc:
        raise _unreadable(name, exc) from exc


@dataclass(frozen=True, slots=True)
class Query:
    """A statement compiled once; ``name`` identifies it in query events.

    ``sql`` ends with ``attribution(name)``, added here once, so the text stays the same on
    every call: prepared statements and ``pg_stat_statements`` still group it.
    """

    name: str
    sql: str

    def __post_init__(self) -> None:
        if not self.sql.endswith(attribution(self.name)):
            object.__setattr__(self, "sql", self.sql + attribution(self.name))

    @classmethod
    def build(cls, name: str, statement: ClauseElement) -> Query:
        return cls(name, str(statement.compile(dialect=_DIALECT)))


@dataclass(frozen=True, slots=True)
class QueryEvent:
    """One statement as it ran: what, how long, and (only when asked) with which values."""

    name: str
    sql: str
    duration_ms: float
    params: Mapping[str, Any] | None
    error: str | None = None
    sqlstate: str | None = None
    error_type: str | None = None
    """The driver exception's class name (``UniqueViolation``, ``OperationalError``)."""
    connection: AsyncConnection[Any] | None = field(default=None, repr=False, compare=False)
    """Where it ran (the database and server a trace names); not for sending statements."""


BATCH_CALLERS: ContextVar[tuple[Context, ...]] = ContextVar("shared_db_batch_callers",
                                                            default=())
"""While one statement answers the point reads of several callers (``shared_db.batching``),
each caller's context as it was when it called: a listener that belongs to a caller (its trace,
its unit of work) runs in each of them, not only in the first caller's, whose context the
statement's task inherited."""

QueryListener = Callable[[QueryEvent], None]


@dataclass
class QueryHooks:
    """Listeners told about every statement; ``with_params`` exposes bound values to them."""

    listeners: list[QueryListener] = field(default_factory=list)
    with_params: bool = False
    trace_context: Callable[[], str] | None = None
    """When set, each statement ends with this comment (the W3C trace context, sqlcommenter)
    and is not server-prepared, as its text changes on every call."""


def columns(record: type[Any], model: type[Any]) -> list[InstrumentedAttribute[Any]]:
    """``model``'s columns in the order of ``record``'s fields (``metadata`` -> ``metadata_``)."""
    names: tuple[str, ...] = record._fields
    return [getattr(model, n if hasattr(model, n) and n != "metadata" else f"{n}_") for n in names]


_ROW_MAKERS: dict[Callable[..., Any], Any] = {}


def _row_maker(record: Callable[..., Any]) -> Any:
    maker = _ROW_MAKERS.get(record)
    if maker is None:
        maker = _ROW_MAKERS[record] = args_row(record)
    return maker


class Executor:
    """Runs ``Query`` objects on one psycopg connection, translating database errors."""

    def __init__(self, connection: AsyncConnection[Any], hooks: QueryHooks, prepare: bool,
                 replace: Callable[[], Awaitable[AsyncConnection[Any]]] | None = None, *,
                 unknown_if_lost: bool = False) -> None:
        """``replace``: for reads only, a fresh connection to run a statement lost with its
        connection once more. ``unknown_if_lost``: statements here are autocommit writes, so
        losing the connection while one runs leaves its outcome unknown."""
        self.connection = connection
        self._hooks = hooks
        self._prepare = prepare
        self._replace = replace
        self._unknown_if_lost = unknown_if_lost

    async def _run(self, query: Query, params: Mapping[str, Any] | Sequence[Any] | None,
                   row: RowMaker[Any] | Callable[..., Any] | None) -> Any:
        cursor = self.connection.cursor(row_factory=row or tuple_row)
        text, prepare = query.sql, self._prepare
        if self._hooks.trace_context is not None:
            text, prepare = text + self._hooks.trace_context(), False
        started = time.perf_counter()
        try:
            try:
                await cursor.execute(text, params, prepare=prepare)
            except psycopg.OperationalError:
                if self._replace is None or not self.connection.broken:
                    raise
                self.connection = await self._replace()  # once: the new one is fresh
                cursor = self.connection.cursor(row_factory=row or tuple_row)
                await cursor.execute(text, params, prepare=prepare)
        except psycopg.Error as exc:
            if self._hooks.listeners:
                self._emit(query, params, started, exc)
            if (self._unknown_if_lost and self.connection.broken
                    and isinstance(exc, psycopg.OperationalError)):
                raise OutcomeUnknownError(
                    f"{query.name}: the connection was lost while the write ran "
                    f"({first_line(exc)}); it may or may not have happened") from exc
            raise translate_error(exc) from None
        if self._hooks.listeners:
            self._emit(query, params, started, None)
        return cursor

    def _emit(self, query: Query, params: Any, started: float,
              error: BaseException | None) -> None:
        elapsed = (time.perf_counter() - started) * 1000
        with_values = self._hooks.with_params
        shown = params if with_values and isinstance(params, Mapping) else None
        event = QueryEvent(query.name, query.sql, elapsed, shown,
                           None if error is None else event_error(error, with_values),
                           getattr(error, "sqlstate", None),
                           None if error is None else type(error).__name__, self.connection)
        for listener in self._hooks.listeners:
            listener(event)

    async def cursor(self, query: Query, params: Mapping[str, Any],
                     record: Callable[..., Any] | None = None) -> Any:
        """The executed cursor, to fetch from later (for pipelines of several statements)."""
        return await self._run(query, params, _row_maker(record) if record else None)

    async def one(self, query: Query, params: Mapping[str, Any],
                  record: Callable[..., T]) -> T | None:
        """The first row as a ``record`` (a type or function taking the columns in order), or
        None."""
        # Results are in memory once execute() returns: fetching does no I/O, and fails only
        # when a value cannot be read (an enum label the Python enum lacks).
        cursor = await self._run(query, params, _row_maker(record))
        return await first(cursor, query.name)  # type: ignore[no-any-return]

    async def all(self, query: Query, params: Mapping[str, Any],
                  record: Callable[..., T]) -> list[T]:
        cursor = await self._run(query, params, _row_maker(record))
        return await every(cursor, query.name)

    async def row(self, query: Query, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The first row as a plain tuple, or None."""
        cursor = await self._run(query, params, None)
        return await first(cursor, query.name)  # type: ignore[no-any-return]

    async def scalar(self, query: Query, params: Mapping[str, Any]) -> Any:
        cursor = await self._run(query, params, None)
        row = await first(cursor, query.name)
        return None if row is None else row[0]

    async def copy_rows(self, query: Query, rows: Sequence[Sequence[Any]]) -> None:
        """``COPY ... FROM STDIN`` of ``rows``: the fastest way to send many rows."""
        started = time.perf_counter()
        try:
            async with self.connection.cursor() as cursor, cursor.copy(query.sql) as copy:
                for row in rows:
                    await copy.write_row(row)
        except psycopg.Error as exc:  # a failed COPY is a failed statement to the listeners
            if self._hooks.listeners:
                self._emit(query, None, started, exc)
            raise translate_error(exc) from None
        if self._hooks.listeners:
            self._emit(query, None, started, None)

    async def command(self, name: str, statement: sql.Composed) -> str | None:
        """A utility statement with its values composed in (``PREPARE TRANSACTION 'id'`` takes
        no parameters); never server-prepared, as each one is different. Its status message
        (``PREPARE TRANSACTION``, or ``ROLLBACK`` for a PREPARE of an aborted transaction)."""
        statement = sql.Composed([statement, sql.SQL(attribution(name))])
        started = time.perf_counter()
        error = None
        try:
            return (await self.connection.execute(statement, prepare=False)).statusmessage
        except psycopg.Error as exc:
            error = exc
            raise translate_error(exc) from None
        finally:
            if self._hooks.listeners:
                self._emit(Query(name, statement.as_string(self.connection)), None, started,
                           error)

    async def execute(self, query: Query, params: Mapping[str, Any]) -> int:
        """Run a write; the number of rows it touched."""
        cursor = await self._run(query, params, None)
        return int(cursor.rowcount)
