"""Idempotency keys: a write made exactly once, however often it is sent.

A call given ``idempotency_key=K`` claims K in the key table of the database it writes to
(``<service>_idempotency_keys``), in the same transaction as its work, and stores its result
there before COMMIT. So the key and the work commit together or not at all:

* the first call with K does the work and returns its result;
* a later call with K and the same arguments, from any process, after any failure (an
  ``OutcomeUnknownError`` included), writes nothing and returns the stored result: the rows
  as they were when the first call committed;
* a call with K made while the first one is still running waits for it (the claim is an
  ``INSERT ... ON CONFLICT`` on the key, which waits for the row's uncommitted writer), then
  returns its result, or does the work itself if the first one rolled back;
* K with other arguments or for another operation is ``IdempotencyKeyReusedError``;
* a failed call stores nothing: only a committed success is remembered.

Keys live ``KEY_TTL`` (24 hours, like the payment APIs' keys); after that K counts as new.
``purge_expired`` deletes what has expired. Passwords are never part of the comparison: a
fast hash of one would be a password leak.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import Any, TypeVar

from psycopg.types.json import Jsonb
from sqlalchemy import (
    Interval,
    Table,
    bindparam,
    delete,
    func,
    literal_column,
    null,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert

from shared_db import validation as check
from shared_db.admin.models import AdminIdempotencyKey
from shared_db.auth.models import AuthIdempotencyKey
from shared_db.base import Base
from shared_db.errors import IdempotencyKeyReusedError, TransientConflictError, ValidationError
from shared_db.payments.models import PaymentsIdempotencyKey
from shared_db.profile.models import ProfileIdempotencyKey
from shared_db.repository import Repository
from shared_db.services import SERVICES
from shared_db.sql import Query
from shared_db.tagged_json import decode, encode

T = TypeVar("T")
KEY_TTL = timedelta(hours=24)
MAX_KEY = 255


_KEY_MODELS: dict[str, type[Base]] = {
    "auth": AuthIdempotencyKey, "admin": AdminIdempotencyKey, "profile": ProfileIdempotencyKey,
    "payments": PaymentsIdempotencyKey}


def _table(service: str) -> Table:
    table = _KEY_MODELS[service].__table__
    assert isinstance(table, Table)
    return table


def _queries(service: str) -> dict[str, Query]:
    t = _table(service)
    claim = insert(t).values(
        key=bindparam("key"), operation=bindparam("operation"),
        request_hash=bindparam("request_hash"),
        expires_at=func.now() + bindparam("ttl", type_=Interval))
    # An expired key is claimed anew; a live one is left alone (and returns no row).
    upsert: Any = claim.on_conflict_do_update(
        index_elements=[t.c.key], where=t.c.expires_at <= func.now(),
        set_={"operation": claim.excluded.operation,
              "request_hash": claim.excluded.request_hash, "result": null(),
              "created_at": func.now(), "expires_at": claim.excluded.expires_at},
    ).returning(literal_column("true"))
    return {
        "claim": Query.build(f"idempotency.{service}.claim", upsert),
        "find": Query.build(f"idempotency.{service}.find", select(
            t.c.operation, t.c.request_hash, t.c.result).where(t.c.key == bindparam("key"))),
        "store": Query.build(f"idempotency.{service}.store", update(t).where(
            t.c.key == bindparam("key")).values(result=bindparam("result"))),
        "purge": Query.build(f"idempotency.{service}.purge", delete(t).where(
            t.c.expires_at <= func.now())),
    }


QUERIES = {service: _queries(service) for service in SERVICES}


def key(value: object) -> str:
    """An idempotency key: 1 to 255 characters, e.g. a UUID the client made for the request."""
    return check.text("idempotency_key", value, max_length=MAX_KEY)


def service_of(value: object) -> str:
    if value not in SERVICES:
        raise ValidationError("service", f"must be one of {', '.join(SERVICES)}, got "
                              f"{check.shown(value)}")
    return str(value)


def arguments(value: dict[str, Any] | None) -> dict[str, Any]:
    """``db.run``'s ``arguments``: what a repeat of its key is compared with.

    Raises:
        ValidationError: a key is not a string, or a value cannot be stored.
    """
    if value is None:
        return {}
    if not all(isinstance(k, str) for k in value):
        raise ValidationError("arguments", "must be a dict with string keys")
    if len(json.dumps(encode(value, "arguments", limit=check.MAX_JSON_DEPTH))
           ) > check.MAX_JSON_BYTES:
        raise ValidationError("arguments", f"must be at most {check.MAX_JSON_BYTES} bytes as "
                              "JSON")
    return dict(value)


class _Again(Exception):
    def __init__(self, conflict: TransientConflictError | None = None) -> None:
        self.conflict = conflict


class _Replay(Exception):
    def __init__(self, result: Any) -> None:
        self.result = result


async def once(unit: Callable[[], AbstractAsyncContextManager[Any]], service: str,
               idempotency_key: str, operation: str, request: Mapping[str, Any],
               work: Callable[[Any], Awaitable[T]]) -> T:
    """``work(tx)`` in the transaction ``unit()`` makes, together with the claim of
    ``idempotency_key``; or the stored result of the call that claimed it first."""
    digest = fingerprint(operation, request)
    params = {"key": idempotency_key, "operation": operation, "request_hash": digest,
              "ttl": KEY_TTL}
    q = QUERIES[service]
    # Again when the key was found and purged between the claim and the lookup, or when the
    # claim itself was refused for serialization (a repeatable-read or serializable claim that
    # waited on a first call which then committed): nothing was done yet, and the next claim
    # finds that call's result.
    refused: TransientConflictError | None = None
    previous: Any = None
    for _ in range(3):
        try:
            async with unit() as tx:
                if tx is previous and refused is not None:
                    # The caller's own transaction (``unit()`` joins it), aborted by the refused
                    # claim: only running all of it again (db.run's retries) can claim anew.
                    raise refused
                previous = tx
                async with tx.executor(service) as ex:
                    try:
                        claimed = await ex.scalar(q["claim"], params)
                    except TransientConflictError as exc:
                        raise _Again(exc) from None
                    if claimed is None:
                        found = await ex.row(q["find"], params)
                        if found is not None:
                            raise _Replay(_replayed(found, operation, digest, idempotency_key))
                        continue
                result = await work(tx)
                stored = Jsonb(encode(result, "result"))
                async with tx.executor(service) as ex:
                    await ex.execute(q["store"], {"key": idempotency_key, "result": stored})
                return result
        except _Replay as replay:
            return replay.result  # type: ignore[no-any-return]
        except _Again as again:
            refused = again.conflict
            continue
    if refused is not None:  # a caller's retries (db.run's) may well take it from here
        raise refused
    raise TransientConflictError("idempotency key was found and purged three times between "
                                 "its claim and its lookup; try again")


def _replayed(found: tuple[Any, ...], operation: str, digest: str, idempotency_key: str) -> Any:
    first_operation, first_digest, result = found
    if first_operation != operation or first_digest != digest:
        used = ("with other arguments" if first_operation == operation
                else f"and this call is {operation}")
        raise IdempotencyKeyReusedError(
            "idempotency_key", f"{idempotency_key!r} was first used for {first_operation} "
            f"{used}; send a new key for a new request")
    return decode(result)


def fingerprint(operation: str, request: Mapping[str, Any]) -> str:
    # Tuples as lists: metadata={"a": (1,)} stores the jsonb [1] that {"a": [1]} does.
    canonical = json.dumps([operation, encode(dict(request), "request", tuples=False)],
                           sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class IdempotencyRepository(Repository):
    """Housekeeping of the key tables of every service database."""

    service = "admin"

    async def purge_expired(self) -> int:
        """Delete every expired key; the number deleted."""
        deleted = 0
        for service in SERVICES:  # one table per service, whether or not databases are shared
            async with self._source.executor(service, write=True) as ex:
                deleted += await ex.execute(QUERIES[service]["purge"], {})
        return deleted
