"""Values as tagged JSON: what an idempotency key stores of a call's result, and what its
request's fingerprint is computed from.

Every value JSON has no type for carries a tag, so ``decode(encode(v))`` gives back the same
Python values (shared-db records, ``Decimal``, ``UUID``, datetimes, enums, tuples) a first call
returned, and a replay returns exactly what it did.
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from shared_db import enums, records
from shared_db import validation as check
from shared_db.errors import ValidationError

MAX_NESTING = 2 * check.MAX_JSON_DEPTH
"""How deep a result or request may nest: records and lists around a JSON value (metadata)
that may itself be ``MAX_JSON_DEPTH`` deep."""

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
        try:
            return {"$": "datetime", "v": value.isoformat()}
        except Exception:  # a tzinfo of the caller's whose utcoffset raises or is out of range
            raise ValidationError(field, "must hold datetimes whose time zone gives a UTC "
                                  "offset under a day") from None
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


_DIGITS = check.MAX_INT_DIGITS
_BIG = check.BIG_INT


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
