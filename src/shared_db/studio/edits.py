"""The studio's writes: each form becomes calls of the repositories, never a statement of its
own, so every rule (validation, the payment state machine, audit rows) applies as it does for
the services. The audit rows name the studio: ``acting_as`` with its user agent.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import quote

from shared_db.client import Database
from shared_db.context import acting_as
from shared_db.errors import (
    ConflictError,
    DataAccessError,
    DuplicateError,
    ForeignKeyError,
    InvalidTransitionError,
    NotFoundError,
    ValidationError,
)
from shared_db.payments.status import TRANSITIONS
from shared_db.records import UserRecord
from shared_db.studio.query import BadRequest
from shared_db.transaction import Transaction

AGENT = "shared-db studio"
"""The user agent every audit row written from the studio carries."""
MAX_FIELD = 10_000
Form = Mapping[str, str]
Edit = Callable[[Database, Form], Awaitable[str]]
"""An edit: the database and the posted form in, the path to show afterwards out."""
CREATE_USER = ("email", "name", "role", "password", "email_verified")
EDIT_USER = ("name", "role", "email_verified", "updated_at")
"""The fields of each form; ``updated_at`` is the user's as the page showed it."""

REFUSALS: list[tuple[type[DataAccessError], int]] = [
    (NotFoundError, 404), (DuplicateError, 409), (InvalidTransitionError, 409),
    (ConflictError, 409), (ForeignKeyError, 409), (ValidationError, 400)]


def refusal_status(error: DataAccessError) -> int:
    """The HTTP status a refused change is answered with (the page shows the error)."""
    return next((code for kind, code in REFUSALS if isinstance(error, kind)), 409)


@contextmanager
def as_studio(client_ip: str | None) -> Iterator[None]:
    with acting_as(None, client_ip, AGENT):
        yield


def optional(form: Form, name: str) -> str | None:
    """A text field, None when left empty."""
    value = form.get(name)
    if value is None or value == "":
        return None
    if len(value) > MAX_FIELD:
        raise BadRequest(f"{name}: longer than {MAX_FIELD} characters")
    return value


def text(form: Form, name: str) -> str:
    value = optional(form, name)
    if value is None:
        raise BadRequest(f"{name}: required")
    return value


def flag(form: Form, name: str) -> bool:
    value = text(form, name)
    if value not in ("true", "false"):
        raise BadRequest(f"{name}: must be true or false")
    return value == "true"


def uuid_of(raw: str, name: str = "id") -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise BadRequest(f"{name}: must be a UUID, got {raw[:40]!r}") from None


async def create_user(db: Database, form: Form) -> str:
    user = await db.users.create(
        email=text(form, "email"), name=text(form, "name"), role=text(form, "role"),
        password=text(form, "password"),
        email_verified=flag(form, "email_verified"))
    return f"/t/users/{user.id}?ok=created"


def stamp(form: Form, name: str) -> datetime:
    value = text(form, name)
    try:
        found = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name}: must be an ISO date-time, got {value[:40]!r}") from None
    if found.tzinfo is None:
        raise BadRequest(f"{name}: must carry its UTC offset, got {value[:40]!r}")
    return found


def user_edit(user_id: uuid.UUID) -> Edit:
    async def edit(db: Database, form: Form) -> str:
        name, verified, role = text(form, "name"), flag(form, "email_verified"), text(form,
                                                                                      "role")
        shown = stamp(form, "updated_at")
        async with db.transaction() as tx:  # all or nothing: one refusal undoes the others
            current = await _unchanged_since(tx, user_id, shown)
            if name != current.name or verified != current.email_verified:
                await tx.users.update(user_id, name=name, email_verified=verified)
            if role != current.role.value:
                await tx.users.set_role(user_id, role)
        return f"/t/users/{user_id}?ok=updated"
    return edit


async def _unchanged_since(tx: Transaction, user_id: uuid.UUID,
                           shown: datetime) -> UserRecord:
    """The user, locked until the transaction ends, or ConflictError when it changed after
    the page showed it: the form holds every field, so it would silently undo a change made
    meanwhile (a role taken away, by another operator or a service).

    ``update`` with the stored value takes the row lock and writes nothing; should the value
    have changed in between, it writes, which moves ``updated_at`` too: refused, and the
    transaction undoes that write with the rest."""
    seen = await tx.users.get(user_id, include_deleted=True)
    if seen is None:
        raise NotFoundError(f"user {user_id} does not exist")
    if seen.deleted_at is not None:
        raise ConflictError(f"user {user_id} is soft-deleted: restore it first, then edit it; "
                            "nothing was changed")
    current = await tx.users.update(user_id, email_verified=seen.email_verified)
    if current.updated_at != shown:
        raise ConflictError(f"user {user_id} was changed after this page showed it (updated_at "
                            f"{current.updated_at:%Y-%m-%d %H:%M:%S}); nothing was changed: "
                            "edit it again as it is now")
    return current


def user_flip(user_id: uuid.UUID, restore: bool) -> Edit:
    async def flip(db: Database, _form: Form) -> str:
        if restore:
            await db.users.restore(user_id)
        else:
            await db.users.soft_delete(user_id)
        return f"/t/users/{user_id}?ok={'restored' if restore else 'deleted'}"
    return flip


def payment_status(payment_id: uuid.UUID) -> Edit:
    async def move(db: Database, form: Form) -> str:
        await db.payment_status.transition(payment_id, text(form, "to"),
                                           expected=text(form, "expected"))
        return f"/t/payments/{payment_id}?ok=moved"
    return move


def allowed_moves(status: Any) -> list[str]:
    """The statuses the state machine lets a payment in ``status`` move to, sorted."""
    return sorted(s.value for s in TRANSITIONS.get(status, frozenset()))


async def set_config(db: Database, form: Form) -> str:
    key, raw = text(form, "key"), text(form, "value")
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        raise BadRequest("value: must be JSON (a string in double quotes, a number, true, "
                         "an object...)") from None
    await db.config.set(key, value, description=optional(form, "description"),
                        updated_by=AGENT)
    return f"/t/system_config/{_path_part(key)}?ok=saved"


def config_delete(key: str) -> Edit:
    async def delete(db: Database, _form: Form) -> str:
        await db.config.delete(key)
        return "/t/system_config?ok=deleted"
    return delete


def _path_part(key: str) -> str:
    return quote(key, safe="")
