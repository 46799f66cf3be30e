"""Who is acting: carried from a request into the audit rows its writes record."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ActorContext:
    """The caller of a write: the acting user (if any), their IP address and user agent."""

    actor_id: uuid.UUID | None = None
    ip_address: str | None = None
    user_agent: str | None = None


_NOBODY = ActorContext()
_current: ContextVar[ActorContext] = ContextVar("shared_db_actor", default=_NOBODY)


def current_actor() -> ActorContext:
    return _current.get()


@contextmanager
def acting_as(actor_id: uuid.UUID | None = None, ip_address: str | None = None,
              user_agent: str | None = None) -> Iterator[ActorContext]:
    """Attribute the writes made inside the block (e.g. one HTTP request) to this actor."""
    token = _current.set(ActorContext(actor_id, ip_address, user_agent))
    try:
        yield _current.get()
    finally:
        _current.reset(token)
