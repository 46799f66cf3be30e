"""Who is acting: carried from a request into the audit rows its writes record.

The IP address and user agent come from the client, so they must never make a write fail: they
are fitted where they are set. A value longer than its limit (``ip_address`` 100 characters,
``user_agent`` 1,000) is cut to the limit, its last character replaced by ``…`` (U+2026) to show
it was cut; NUL and lone surrogates, which PostgreSQL text cannot hold, become U+FFFD. Only a
value of the wrong type is refused there (``ValidationError``), as a programming error.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from shared_db.errors import ValidationError

LIMITS = {"ip_address": 100, "user_agent": 1000}
CUT = "\u2026"


@dataclass(frozen=True, slots=True)
class ActorContext:
    """The caller of a write: the acting user (if any), their IP address and user agent."""

    actor_id: uuid.UUID | None = None
    ip_address: str | None = None
    user_agent: str | None = None

    def __post_init__(self) -> None:
        if self.actor_id is not None and not isinstance(self.actor_id, uuid.UUID):
            raise ValidationError("actor_id", "must be a uuid.UUID or None, got "
                                  f"{type(self.actor_id).__name__}")
        for name, limit in LIMITS.items():
            object.__setattr__(self, name, fitted(name, getattr(self, name), limit))


def fitted(field: str, value: object, limit: int) -> str | None:
    """``value`` made storable: sendable characters, at most ``limit`` of them."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a str or None, got {type(value).__name__}")
    if len(value) > limit:
        value = value[:limit - 1] + CUT
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    try:
        value.encode()
    except UnicodeEncodeError:
        value = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in value)
    return value


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
