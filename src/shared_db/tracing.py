"""OpenTelemetry spans, when the ``otel`` extra is installed and tracing is enabled.

Nothing here imports OpenTelemetry until ``enable`` is called, and every caller checks
``state.tracer is None`` first, so a process that never enables tracing pays one attribute read
per call and allocates nothing. Tracing is process-wide, like OpenTelemetry's tracer provider:
spans are children of the caller's current span, whichever ``Database`` ran them.

Attributes follow OpenTelemetry's database semantic conventions: ``db.system.name``
(``postgresql``), ``db.namespace`` (``database.schema``), ``db.operation.name`` (the SQL verb),
``db.query.summary`` (the query's name, also the span's name), ``db.query.text`` (the compiled
statement: placeholders, never values), ``db.response.status_code`` (the SQLSTATE),
``server.address``, ``server.port`` and ``error.type``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any
from weakref import WeakKeyDictionary

from shared_db.errors import ValidationError

log = logging.getLogger("shared_db.tracing")


class _State:
    __slots__ = ("api", "context", "tracer", "warned")

    def __init__(self) -> None:
        self.tracer: Any = None  # an opentelemetry Tracer while tracing is enabled
        self.api: Any = None  # the opentelemetry.trace module, once imported
        self.context: Any = None  # the opentelemetry.context module, once imported
        self.warned = False  # that opentelemetry is missing: once a process, like the import


state = _State()
_VERBS: dict[str, str] = {}
_SERVERS: WeakKeyDictionary[Any, dict[tuple[str, str], dict[str, Any]]] = WeakKeyDictionary()
"""Per connection, each statement's attributes (a connection leads to one server)."""
_UNCONNECTED: dict[tuple[str, str], dict[str, Any]] = {}
MAX_KEPT = 512
"""Statements' attributes kept per connection: more than the package has queries."""
_SEARCH_PATH = re.compile(r"search_path\s*=\s*([^\s,]+)")
_COMMANDS = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "VALUES", "TABLE"})
_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|/\*.*?\*/|--[^\n]*|[()]|\w+", re.S)


def _api() -> Any:
    if state.api is None:
        try:
            from opentelemetry import context, trace
        except ImportError:
            state.api = False  # tried once: not installed
            return None
        state.api, state.context = trace, context
    return state.api or None


def enable(provider: Any = None) -> bool:
    """Start tracing with ``provider`` (default: OpenTelemetry's global tracer provider).

    Returns False, tracing nothing, when the ``otel`` extra is not installed.

    Raises:
        ValidationError: ``provider`` is not a tracer provider.
    """
    if provider is not None and not callable(getattr(provider, "get_tracer", None)):
        raise ValidationError("provider", f"must be an OpenTelemetry TracerProvider, got "
                              f"{type(provider).__name__}")
    api = _api()
    if api is None:
        if not state.warned:
            state.warned = True
            log.warning("SHARED_DB_TRACING is on but opentelemetry is not installed "
                        "(pip install 'shared-db[otel]'); tracing nothing")
        return False
    state.tracer = api.get_tracer("shared_db", tracer_provider=provider)
    return True


def disable() -> None:
    state.tracer = None


def dropped() -> bool:
    """Is the current trace one the sampler dropped? Its spans are not started: with the
    parent-based samplers services use (the SDK's default) they would be dropped too, after
    costing nearly as much as a recorded span. The sampled flag decides, not whether the current
    span records: a parent read from an incoming ``traceparent`` never records, yet its trace
    is sampled when the flag says so."""
    found = state.api.get_current_span().get_span_context()
    return bool(found.is_valid and not found.trace_flags.sampled)


def _failed(span: Any, exc: BaseException) -> None:
    if span.is_recording():
        span.set_attribute("error.type", getattr(exc, "sqlstate", None)
                           or type(exc).__qualname__)
        span.set_status(state.api.Status(state.api.StatusCode.ERROR, str(exc)))


async def call(name: str, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...],
               kwargs: Mapping[str, Any]) -> Any:
    """``fn(*args, **kwargs)`` inside a span named ``name``, current for the statements it runs.

    The caller has checked ``dropped()``: a dropped trace's call then awaits ``fn`` itself, one
    coroutine frame fewer on each of its resumptions."""
    # By hand rather than start_as_current_span: its context managers cost more than the span
    # itself on a call that takes a few hundred microseconds.
    span = state.tracer.start_span(name)
    token = state.context.attach(state.api.set_span_in_context(span))
    try:
        return await fn(*args, **kwargs)
    except BaseException as exc:
        _failed(span, exc)
        raise
    finally:
        state.context.detach(token)
        span.end()


@contextmanager
def _span(name: str, attributes: Mapping[str, Any]) -> Iterator[Any]:
    with state.tracer.start_as_current_span(name, attributes=attributes) as span:
        try:
            yield span
        except BaseException as exc:
            _failed(span, exc)
            raise


def span(name: str, **attributes: Any) -> AbstractContextManager[Any]:
    """A current span around a block (a retry attempt, a two-phase commit), or nothing when
    tracing is off."""
    if state.tracer is None:
        return nullcontext()
    return _span(name, attributes)


class Opened:
    """A span made current in ``__aenter__`` and ended in ``__aexit__`` of another object (a
    transaction), which cannot hold a ``with`` block open across its two methods."""

    __slots__ = ("_span", "_token")

    def __init__(self, name: str, **attributes: Any) -> None:
        self._span = state.tracer.start_span(name, attributes=attributes)
        self._token = state.context.attach(state.api.set_span_in_context(self._span))

    def close(self, exc: BaseException | None) -> None:
        if exc is not None:
            _failed(self._span, exc)
        self._span.end()
        # Only where it was made current: closed in another task (an async fixture's teardown),
        # OpenTelemetry would log a traceback for a token of another context.
        if state.api.get_current_span() is self._span:
            state.context.detach(self._token)


def verb(name: str, text: str) -> str:
    """The SQL command of a statement (``SELECT``, ``INSERT``…); of a ``WITH`` statement, the
    command its common table expressions lead to (``users.create`` is an ``INSERT``)."""
    found = _VERBS.get(name)
    if found is None:
        found = _VERBS[name] = _command(text)
    return found


def _command(text: str) -> str:
    first = (text.split(None, 1) or [""])[0].upper()
    if first != "WITH":
        return first
    depth = 0
    token: str
    for token in _TOKEN.findall(text):
        if token == "(":
            depth += 1
        elif token == ")":
            depth -= 1
        elif depth == 0 and token.upper() in _COMMANDS:
            return token.upper()
    return first


def statement(name: str, text: str, duration_ms: float, error_type: str | None,
              sqlstate: str | None, connection: Any) -> None:
    """A client span for a statement that has just ended, drawn back to when it started."""
    if not dropped():
        _draw(name, text, duration_ms, error_type, sqlstate, connection, 1)


def batched_statement(drawn: set[int], name: str, text: str, duration_ms: float,
                      error_type: str | None, sqlstate: str | None, connection: Any,
                      callers: int) -> None:
    """``statement`` for one of the ``callers`` a batched statement answered, run in that
    caller's context: one span under each parent span (``drawn`` holds the parents' ids, 0 for
    none), none in a dropped trace. One context lookup decides both, as most callers of a
    sampled-at-1 % service are in dropped traces."""
    found = state.api.get_current_span().get_span_context()
    if found.is_valid and not found.trace_flags.sampled:
        return
    parent = found.span_id if found.is_valid else 0
    if parent not in drawn:
        drawn.add(parent)
        _draw(name, text, duration_ms, error_type, sqlstate, connection, callers)


def _draw(name: str, text: str, duration_ms: float, error_type: str | None,
          sqlstate: str | None, connection: Any, callers: int) -> None:
    api, end = state.api, time.time_ns()
    # Attributes given at the start: set afterwards, each is checked again under the span's
    # lock, which cost a third of the span (22 against 15 µs here).
    attributes = _attributes(name, text, connection)
    if error_type is not None:
        attributes = {**attributes, "error.type": sqlstate or error_type}
        if sqlstate is not None:
            attributes["db.response.status_code"] = sqlstate
    if callers > 1:
        attributes = {**attributes, "shared_db.batch.callers": callers}
    span = state.tracer.start_span(name, kind=api.SpanKind.CLIENT, attributes=attributes,
                                   start_time=end - int(duration_ms * 1_000_000))
    if error_type is not None:
        span.set_status(api.Status(api.StatusCode.ERROR))
    span.end(end_time=end)


def _attributes(name: str, text: str, connection: Any) -> dict[str, Any]:
    """A statement's attributes, the same on every run of it on one connection: made once.

    Keyed by the text as well: a command (two-phase commit's ``COMMIT PREPARED 'id'``) keeps its
    name while its text changes, and is not kept beyond ``MAX_KEPT`` texts a connection."""
    by_text = _SERVERS.get(connection) if connection is not None else _UNCONNECTED
    if by_text is None:
        by_text = _SERVERS[connection] = {}
    found = by_text.get((name, text))
    if found is None:
        found = {"db.system.name": "postgresql", "db.query.summary": name,
                 "db.operation.name": verb(name, text), "db.query.text": text,
                 **(_server(connection) if connection is not None else {})}
        if len(by_text) < MAX_KEPT:
            by_text[name, text] = found
    return found


def _server(connection: Any) -> dict[str, Any]:
    """Where a connection leads: PostgreSQL's ``db.namespace`` is ``database.schema``, the
    schema being the URL's ``schema`` (``search_path``) or ``public``."""
    info = connection.info
    match = _SEARCH_PATH.search(info.get_parameters().get("options", ""))
    schema = match.group(1).strip("'\"") if match else "public"
    return {"db.namespace": f"{info.dbname}.{schema}", "server.address": info.host,
            "server.port": info.port}


def _context() -> Any:
    api = _api()
    if api is None:
        return None
    found = api.get_current_span().get_span_context()
    return found if found.is_valid else None


def trace_id() -> str | None:
    """The current trace's id (32 hex digits), or None outside a trace."""
    found = _context()
    return None if found is None else f"{found.trace_id:032x}"


def traceparent() -> str:
    """The W3C trace context as a trailing sqlcommenter comment, or nothing outside a trace."""
    found = _context()
    if found is None:
        return ""
    return (f" /*traceparent='00-{found.trace_id:032x}-{found.span_id:016x}-"
            f"{int(found.trace_flags):02x}'*/")
