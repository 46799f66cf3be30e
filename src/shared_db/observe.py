"""Query logging, slow-query detection and an N+1 detector, fed by the client's query hook.

Levels follow the guide's client: ``development`` logs every query, warnings and errors;
``production`` logs errors only. A query slower than ``slow_ms`` (the guide's 1000 ms by default)
is a warning carrying the SQL, the duration and, only when ``log_params`` is on, the parameters;
registered callbacks get the event too. Parameters are never logged by default: they hold
emails, hashes and tokens.

The N+1 detector counts statements by shape (the compiled statement) within one unit of work:
a ``Transaction``, or a ``detect_n_plus_one()`` block (one request, say). The same shape run
``threshold`` times or more is a warning; with ``strict`` (for test suites) it raises
``NPlusOneError`` at the statement that crosses the line.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from shared_db.config import QueryLogSettings
from shared_db.errors import DataAccessError
from shared_db.errors_db import REFUSALS
from shared_db.sql import QueryEvent, QueryHooks

logger = logging.getLogger("shared_db.query")


class NPlusOneError(DataAccessError):
    """The same statement ran too often in one unit of work (strict N+1 detection)."""


_unit: ContextVar[Counter[str] | None] = ContextVar("shared_db_unit_of_work", default=None)


@contextmanager
def detect_n_plus_one() -> Iterator[Counter[str]]:
    """Count statements by shape inside the block as one unit of work."""
    token = _unit.set(Counter())
    try:
        yield _unit.get() or Counter()
    finally:
        _unit.reset(token)


@dataclass
class QueryLog:
    """The listener: logs, flags slow queries, and watches for N+1 patterns."""

    settings: QueryLogSettings = field(default_factory=QueryLogSettings)
    slow_callbacks: list[Callable[[QueryEvent], None]] = field(default_factory=list)

    def install(self, hooks: QueryHooks) -> QueryLog:
        hooks.with_params = hooks.with_params or self.settings.log_params
        hooks.listeners.append(self)
        return self

    def on_slow(self, callback: Callable[[QueryEvent], None]) -> None:
        self.slow_callbacks.append(callback)

    def __call__(self, event: QueryEvent) -> None:
        levels = self.settings.levels
        params = event.params if self.settings.log_params else None
        if event.error is not None:
            if event.sqlstate is not None and event.sqlstate[:2] in REFUSALS:
                # A taken email or a missing reference is an answer, not a failure: it is
                # logged with the queries, never as an error.
                if "query" in levels:
                    logger.info("query refused: %s (%.1f ms): %s", event.sql,
                                event.duration_ms, event.error,
                                extra={"query": event.name, "params": params})
            elif "error" in levels:
                logger.error("query failed: %s (%.1f ms): %s", event.sql, event.duration_ms,
                             event.error, extra={"query": event.name, "params": params})
            return
        if "query" in levels:
            logger.debug("Query: %s Duration: %.1fms", event.sql, event.duration_ms,
                         extra={"query": event.name, "duration_ms": event.duration_ms})
        if event.duration_ms >= self.settings.slow_ms:
            if "warn" in levels or "error" in levels:
                logger.warning("Slow query detected: %s Duration: %.1fms Params: %s", event.sql,
                               event.duration_ms, params if params is not None else "(hidden)",
                               extra={"query": event.name, "duration_ms": event.duration_ms})
            for callback in self.slow_callbacks:
                callback(event)
        self._count(event)

    def _count(self, event: QueryEvent) -> None:
        counts = _unit.get()
        if counts is None:
            return
        counts[event.sql] += 1
        if counts[event.sql] == self.settings.n_plus_one:
            message = (f"possible N+1: {event.name} ran {counts[event.sql]} times in one unit "
                       "of work; load the rows together (e.g. users.eager_many)")
            if self.settings.strict:
                raise NPlusOneError(message)
            logger.warning(message, extra={"query": event.name})
