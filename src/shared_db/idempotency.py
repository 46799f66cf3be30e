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

import dataclasses
import hashlib
import json
import math
import uuid
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import Enum
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

from shared_db import enums, records
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

T = TypeVar("T")
KEY_TTL = timedelta(hours=24)
MAX_KEY = 255
MAX_NESTING = 2 * check.MAX_JSON_DEPTH
"""How deep a result or request may nest: records and lists around a JSON value (metadata)
that may itself be ``MAX_JSON_DEPTH`` deep."""


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
        raise ValidationError("service", f"must be one of {', '.join(SERVICES)}, got {value!r}")
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
    for _ in range(3):
        try:
            async with unit() as tx:
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
        raise IdempotencyKeyReusedError(
            "idempotency_key", f"{idempotency_key!r} was first used for {first_operation} with "
            f"other arguments; send a new key for a new request")
    return decode(result)


def fingerprint(operation: str, request: Mapping[str, Any]) -> str:
    # Tuples as lists: metadata={"a": (1,)} stores the jsonb [1] that {"a": [1]} does.
    canonical = json.dumps([operation, encode(dict(request), "request", tuples=False)],
                           sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


# Results are stored as JSON with a tag for every value JSON has no type for, so a replay
# returns the same Python values (records, Decimal, UUID, datetimes, enums) as the first call.
_RECORDS: dict[str, type[Any]] = {
    name: obj for name, obj in vars(records).items()
    if isinstance(obj, type) and obj.__module__ == records.__name__}
_ENUMS: dict[str, type[Enum]] = {
    name: obj for name, obj in vars(enums).items()
    if isinstance(obj, type) and issubclass(obj, Enum) and obj.__module__ == enums.__name__}


def encode(value: Any, field: str, depth: int = 1, *, tuples: bool = True,
           limit: int = MAX_NESTING) -> Any:
    """``value`` as JSON, tagged so that ``decode`` gives it back; with ``tuples`` False, a
    tuple is tagged as the list it is stored as (a request's fingerprint).

    Raises:
        ValidationError: a value of a kind that cannot be stored, or nested more than
            ``limit`` deep (a dict holding itself is infinitely deep); ``field`` names it.
    """
    if depth > limit:
        raise ValidationError(field, f"must be nested at most {limit} deep")

    def deeper(item: Any) -> Any:
        return encode(item, field, depth + 1, tuples=tuples, limit=limit)

    if isinstance(value, Enum) and _ENUMS.get(type(value).__name__) is type(value):
        return {"$": "enum", "t": type(value).__name__, "v": value.value}
    if isinstance(value, str):
        return _text(value, field)
    if isinstance(value, int) and not isinstance(value, bool) and not -_BIG < value < _BIG:
        raise ValidationError(field, f"must hold integers of at most {_DIGITS} digits")
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, Decimal) and value.is_finite():
        return {"$": "decimal", "v": str(value)}
    if isinstance(value, uuid.UUID):
        return {"$": "uuid", "v": str(value)}
    if isinstance(value, datetime):
        return {"$": "datetime", "v": value.isoformat()}
    if isinstance(value, date):
        return {"$": "date", "v": value.isoformat()}
    name = type(value).__name__
    if _RECORDS.get(name) is type(value):
        if isinstance(value, tuple):
            return {"$": "record", "t": name, "v": [deeper(v) for v in value]}
        return {"$": "record", "t": name, "v": {f.name: deeper(getattr(value, f.name))
                                               for f in dataclasses.fields(value)}}
    if isinstance(value, (list, tuple)):
        tag = "tuple" if tuples and isinstance(value, tuple) else "list"
        return {"$": tag, "v": [deeper(v) for v in value]}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"$": "dict", "v": {_text(k, field): deeper(v) for k, v in value.items()}}
    what = "an idempotent call must return" if field == "result" else "must hold only"
    raise ValidationError(field, f"{what} JSON values, shared-db records, Decimal, UUID, "
                          f"datetime or enums, not {name}")


_DIGITS = 4000
_BIG = 10 ** _DIGITS  # json.dumps refuses an int past Python's 4300-digit conversion limit


def _text(value: str, field: str) -> str:
    # jsonb refuses NUL, and UTF-8 a lone surrogate: refused here, they would fail at the
    # server after the work ran, naming neither the field nor the rule.
    if "\x00" in value:
        raise ValidationError(field, "must not contain NUL characters")
    return check.utf8(field, value)


def decode(value: Any) -> Any:
    if not isinstance(value, dict):  # encode tags every list and dict
        return value
    tag: str = value["$"]
    inner: Any = value["v"]
    if tag == "dict":
        return {k: decode(v) for k, v in inner.items()}
    if tag in ("list", "tuple"):
        items = [decode(v) for v in inner]
        return items if tag == "list" else tuple(items)
    if tag == "record":
        kind = _RECORDS[value["t"]]
        if isinstance(inner, list):
            return kind(*(decode(v) for v in inner))
        return kind(**{k: decode(v) for k, v in inner.items()})
    simple: dict[str, Callable[[Any], Any]] = {
        "decimal": Decimal, "uuid": uuid.UUID, "datetime": datetime.fromisoformat,
        "date": date.fromisoformat, "enum": lambda v: _ENUMS[value["t"]](v)}
    return simple[tag](inner)


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
