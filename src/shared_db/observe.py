"""Query logging, slow-query detection and an N+1 detector, fed by the client's query hook.

Levels follow the guide's client: ``development`` logs every query, warnings and errors;
``production`` logs errors only. A query slower than ``slow_ms`` (the guide's 1000 ms by default)
is a warning carrying the SQL, the duration and, only when ``log_params`` is on, the parameters;
registered callbacks get the event too. Parameters are never logged by default: they hold
emails, hashes and tokens.

A callback that raises is logged (``shared_db.query``, with its traceback) and otherwise
ignored: it runs after the statement has run, often after a write committed, and an exception
escaping from there would report a done write as failed, inviting its caller to send it again.

The N+1 detector counts statements by shape (the compiled statement) within one unit of work:
a ``Transaction``, or a ``detect_n_plus_one()`` block (one request, say). Units nest, and a
statement counts in each unit around it: a request that calls a write method in a loop runs one
transaction per call, and only the request's unit sees the repetition. The same shape run
``threshold`` times or more in a unit is a warning; with ``strict`` (for test suites) it raises
``NPlusOneError`` at the statement that crosses the line.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shared_db import tracing
from shared_db.config import QueryLogSettings, TelemetrySettings
from shared_db.errors import DataAccessError, ValidationError
from shared_db.errors_db import REFUSALS
from shared_db.sql import BATCH_CALLERS, QueryEvent, QueryHooks

if TYPE_CHECKING:
    from shared_db.metrics import Metrics

logger = logging.getLogger("shared_db.query")


class NPlusOneError(DataAccessError):
    """The same statement ran too often in one unit of work (strict N+1 detection)."""


# The units of work around the current code, outermost first.
_units: ContextVar[tuple[Counter[str], ...]] = ContextVar("shared_db_units_of_work",
                                                          default=())


@contextmanager
def detect_n_plus_one() -> Iterator[Counter[str]]:
    """Count statements by shape inside the block as one unit of work; the counts are yielded.

    Statements also count in the units around it (a request's, when this is a transaction)."""
    counts: Counter[str] = Counter()
    token = _units.set((*_units.get(), counts))
    try:
        yield counts
    finally:
        # Left in another task than the one it was entered in (a transaction opened in an
        # async fixture and closed in its teardown): the unit lived in that task's context, and
        # a ValueError here would report a committed transaction as failed.
        with suppress(ValueError):
            _units.reset(token)


_exempt: ContextVar[bool] = ContextVar("shared_db_n_plus_one_exempt", default=False)


@contextmanager
def exempt_from_n_plus_one() -> Iterator[None]:
    """Statements inside the block count in no unit of work: for tooling that writes a fixed
    list row by row on purpose (the seed), which a strict detector in the environment would
    otherwise refuse. They are still logged, timed and traced."""
    token = _exempt.set(True)
    try:
        yield
    finally:
        with suppress(ValueError):
            _exempt.reset(token)


@dataclass
class QueryLog:
    """The listener: logs, flags slow queries, and watches for N+1 patterns."""

    settings: QueryLogSettings = field(default_factory=QueryLogSettings)
    slow_callbacks: list[Callable[[QueryEvent], None]] = field(default_factory=list)
    n_plus_one_callbacks: list[Callable[[QueryEvent], None]] = field(default_factory=list)

    def install(self, hooks: QueryHooks) -> QueryLog:
        hooks.with_params = hooks.with_params or self.settings.log_params
        hooks.listeners.append(self)
        return self

    def on_slow(self, callback: Callable[[QueryEvent], None]) -> None:
        """Call ``callback`` with every statement slower than ``slow_ms``."""
        self.slow_callbacks.append(_callable(callback))

    def on_n_plus_one(self, callback: Callable[[QueryEvent], None]) -> None:
        """Call ``callback`` with the statement that crossed the N+1 threshold."""
        self.n_plus_one_callbacks.append(_callable(callback))

    def __call__(self, event: QueryEvent) -> None:
        levels = self.settings.levels
        params = event.params if self.settings.log_params else None
        if event.error is not None:
            if event.sqlstate is not None and event.sqlstate[:2] in REFUSALS:
                # A taken email or a missing reference is an answer, not a failure: it is
                # logged with the queries, never as an error.
                if "query" in levels:
                    self._log(logging.INFO, "refused", event, params,
                              "query refused: %s (%.1f ms): %s",
                              event.sql, event.duration_ms, event.error)
            elif "error" in levels:
                self._log(logging.ERROR, "error", event, params, "query failed: %s (%.1f ms): %s",
                          event.sql, event.duration_ms, event.error)
            if event.duration_ms >= self.settings.slow_ms:
                # Slow, then failed (a statement_timeout past slow_ms): slow all the same to the
                # callbacks and the slow-query metric; its log line above gives the duration.
                _notify(self.slow_callbacks, event, "slow-query", self.settings.log_format)
            return
        if "query" in levels:
            if params is None:
                self._log(logging.DEBUG, "ok", event, None, "Query: %s Duration: %.1fms",
                          event.sql, event.duration_ms)
            else:  # SHARED_DB_LOG_PARAMS: every query with its values, as Prisma's e.params
                self._log(logging.DEBUG, "ok", event, params,
                          "Query: %s Duration: %.1fms Params: %s", event.sql,
                          event.duration_ms, params)
        if event.duration_ms >= self.settings.slow_ms:
            if "warn" in levels or "error" in levels:
                self._log(logging.WARNING, "slow", event, params,
                          "Slow query detected: %s Duration: %.1fms Params: %s", event.sql,
                          event.duration_ms, params if params is not None else "(hidden)")
            _notify(self.slow_callbacks, event, "slow-query", self.settings.log_format)
        self._count(event)

    def _log(self, level: int, outcome: str, event: QueryEvent, params: object,
             message: str, *args: object) -> None:
        extra = {"query": event.name, "duration_ms": event.duration_ms, "params": params}
        if self.settings.log_format != "json":
            logger.log(level, message, *args, extra=extra)
        elif logger.isEnabledFor(level):
            document = {"event": "query", "query": event.name,
                        "duration_ms": round(event.duration_ms, 3), "outcome": outcome,
                        "trace_id": tracing.trace_id()}
            callers = BATCH_CALLERS.get()
            if callers:  # one statement for several calls: each one's trace, first one first
                found = (c.run(tracing.trace_id) for c in callers)
                document["trace_ids"] = list(dict.fromkeys(t for t in found if t is not None))
            if event.error is not None:
                document.update(error=event.error, sqlstate=event.sqlstate)
            if params is not None:
                document["params"] = params
            logger.log(level, "%s", json.dumps(document, default=str), extra=extra)

    def _count(self, event: QueryEvent) -> None:
        if _exempt.get():
            return
        crossed = False
        callers = BATCH_CALLERS.get()
        # A statement shared by several calls counts once in each unit around any of them
        units = _units.get() if not callers else {
            id(u): u for c in callers for u in c.run(_units.get)}.values()
        for counts in units:
            counts[event.sql] += 1
            crossed = crossed or counts[event.sql] == self.settings.n_plus_one
        if crossed:  # one warning for the statement, however many units it crossed in
            fix = ("load the rows together (e.g. users.eager_many)"
                   if tracing.verb(event.name, event.sql) in ("SELECT", "WITH") else
                   "write the rows together (e.g. users.create_many)")
            message = (f"possible N+1: {event.name} ran {self.settings.n_plus_one} times in "
                       f"one unit of work; {fix}")
            _notify(self.n_plus_one_callbacks, event, "N+1", self.settings.log_format)
            if self.settings.strict:
                raise NPlusOneError(message)
            if self.settings.log_format == "json":
                message = json.dumps({"event": "n_plus_one", "query": event.name,
                                      "count": self.settings.n_plus_one, "message": message,
                                      "trace_id": tracing.trace_id()})
            logger.warning(message, extra={"query": event.name})


def _callable(callback: Callable[[QueryEvent], None]) -> Callable[[QueryEvent], None]:
    if not callable(callback):
        raise ValidationError("callback", f"must be callable, got {type(callback).__name__}")
    return callback


def _notify(callbacks: list[Callable[[QueryEvent], None]], event: QueryEvent,
            kind: str, log_format: str) -> None:
    for callback in callbacks:
        try:
            callback(event)
        except Exception as exc:
            if log_format != "json":
                logger.exception("%s callback %r failed on %s; ignored", kind, callback,
                                 event.name, extra={"query": event.name})
                continue
            # One object on one line, the traceback inside it: a record's exc_info would be
            # printed after the message, over many lines no JSON reader takes.
            document = {"event": "callback_failed", "kind": kind, "query": event.name,
                        "callback": repr(callback), "error": f"{type(exc).__name__}: {exc}",
                        "traceback": "".join(traceback.format_exception(exc)),
                        "trace_id": tracing.trace_id()}
            logger.error("%s", json.dumps(document, default=str), extra={"query": event.name})


def trace_statement(event: QueryEvent) -> None:
    """The query-hook listener that draws each statement as a client span: in each caller's
    trace when it answered several (``BATCH_CALLERS``)."""
    if tracing.state.tracer is None:
        return
    callers = BATCH_CALLERS.get()
    if not callers:
        tracing.statement(event.name, event.sql, event.duration_ms, event.error_type,
                          event.sqlstate, event.connection)
        return
    drawn: set[int] = set()
    for caller in callers:
        caller.run(tracing.batched_statement, drawn, event.name, event.sql, event.duration_ms,
                   event.error_type, event.sqlstate, event.connection, len(callers))


def telemetry(wanted: TelemetrySettings, hooks: QueryHooks, log: QueryLog) -> Metrics | None:
    """Add to ``hooks`` the listeners ``wanted`` asks for; the metrics, when asked for.

    Each is added only when asked for, so the hook calls nothing more otherwise.
    """
    if wanted.tracing and tracing.enable():
        hooks.listeners.append(trace_statement)
    if wanted.trace_context:
        hooks.trace_context = tracing.traceparent
    if not wanted.metrics:
        return None
    from shared_db.metrics import Metrics  # prometheus_client only when used

    return Metrics(hooks, log)
