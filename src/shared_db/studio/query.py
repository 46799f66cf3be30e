"""A table view's query string, parsed and checked before any SQL is built.

``sort=COLUMN&dir=asc|desc&after=CURSOR&deleted=1`` and filters ``f.COLUMN.OP=VALUE`` with the
operators a column's kind allows: ``eq`` and ``contains`` for text, ``eq`` for enums, flags and
ids, ``gte``/``lte`` for dates and amounts, and ``null`` (``1`` is null, ``0`` is not) for any
nullable column. Anything else is a ``BadRequest`` naming the parameter, answered with 400.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from shared_db.studio.catalog import Field, TableInfo, tables

MAX_VALUE = 500
MAX_CURSOR = 6000
"""Characters of a cursor: base64 of two values as long as a value read back may be
(``MAX_VALUE`` characters, four UTF-8 bytes each at most), with room for the JSON around them."""
MAX_DECIMALS = 30
PAGE = 50
OPERATORS: dict[str, frozenset[str]] = {
    "text": frozenset({"eq", "contains"}),
    "enum": frozenset({"eq"}),
    "bool": frozenset({"eq"}),
    "uuid": frozenset({"eq"}),
    "datetime": frozenset({"gte", "lte"}),
    "number": frozenset({"gte", "lte"}),
    "json": frozenset(),
}
_CURSOR = re.compile(r"^[A-Za-z0-9_-]+$")
KNOWN = frozenset({"sort", "dir", "after", "deleted", "ok"})


class BadRequest(Exception):
    """A request the studio refuses before touching the database; ``status`` is its answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Filter:
    column: str
    op: str
    value: Any
    raw: str


@dataclass(frozen=True)
class Listing:
    table: TableInfo
    sort: str
    descending: bool
    filters: tuple[Filter, ...] = ()
    after: tuple[Any, Any] | None = None
    include_deleted: bool = False

    def params(self, **changes: str | None) -> dict[str, str]:
        """This view's query parameters with ``changes`` (None drops one), for links."""
        found = {"sort": self.sort, "dir": "desc" if self.descending else "asc",
                 **({"deleted": "1"} if self.include_deleted else {}),
                 **{f"f.{f.column}.{f.op}": f.raw for f in self.filters}}
        for name, value in changes.items():
            if value is None:
                found.pop(name, None)
            else:
                found[name] = value
        return found


def table_named(name: str) -> TableInfo:
    info = tables().get(name)
    if info is None:
        raise BadRequest(f"unknown table {name!r}; the tables are listed on the start page")
    return info


def plain_text(raw: str, parameter: str) -> str:
    """``raw`` if PostgreSQL can take it as text: bounded, no NUL, no lone surrogate (which a
    JSON ``\\ud800`` in a cursor spells, and which no UTF-8 encodes)."""
    if len(raw) > MAX_VALUE:
        raise BadRequest(f"{parameter}: longer than {MAX_VALUE} characters")
    if "\x00" in raw:
        raise BadRequest(f"{parameter}: contains a NUL character")
    try:
        raw.encode()
    except UnicodeEncodeError:
        raise BadRequest(f"{parameter}: holds a lone surrogate, which is not text") from None
    return raw


def value_of(spec: Field, op: str, raw: str, parameter: str) -> Any:
    """``raw`` read as ``spec``'s kind, or BadRequest naming ``parameter``."""
    plain_text(raw, parameter)
    if op == "null":
        if raw not in ("0", "1"):
            raise BadRequest(f"{parameter}: must be 1 (is null) or 0 (is not null)")
        return raw == "1"
    try:
        if spec.kind == "datetime" and op == "lte" and len(raw) == 10:
            # "to 2026-01-31" means to the end of that day, as a reader means it
            return datetime.combine(date.fromisoformat(raw), time.max, tzinfo=UTC)
        return _READERS[spec.kind](spec, raw)
    except (ValueError, InvalidOperation, OverflowError):
        raise BadRequest(f"{parameter}: {_EXPECTED[spec.kind]}, got {raw[:40]!r}") from None


def _enum(spec: Field, raw: str) -> str:
    if raw not in spec.choices:
        raise ValueError(raw)
    return raw


def _bool(_spec: Field, raw: str) -> bool:
    if raw not in ("true", "false"):
        raise ValueError(raw)
    return raw == "true"


def _datetime(_spec: Field, raw: str) -> datetime:
    stamp = datetime.combine(date.fromisoformat(raw), time()) if len(raw) == 10 \
        else datetime.fromisoformat(raw)
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _number(_spec: Field, raw: str) -> Decimal:
    number = Decimal(raw)
    if not number.is_finite() or abs(number) >= Decimal("1e15"):
        raise ValueError(raw)
    # PostgreSQL's numeric holds 16,383 digits after the point: 1e-100000 would reach the
    # database and come back as its NumericValueOutOfRange, naming no parameter.
    exponent = number.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_DECIMALS:
        raise ValueError(raw)
    return number


_READERS = {"text": lambda _s, raw: raw, "enum": _enum, "bool": _bool, "uuid": lambda _s,
            raw: uuid.UUID(raw), "datetime": _datetime, "number": _number}
_EXPECTED = {"enum": "must be one of the column's values", "bool": "must be true or false",
             "uuid": "must be a UUID", "datetime": "must be an ISO date or date-time",
             "number": f"must be a finite number below 10^15 with at most {MAX_DECIMALS} "
             "decimals", "text": "must be text"}


def _filter(info: TableInfo, name: str, raw: str) -> Filter | None:
    parts = name.split(".")
    if len(parts) != 3:
        raise BadRequest(f"{name}: a filter is f.COLUMN.OPERATOR")
    _, column, op = parts
    spec = info.field(column)
    if spec is None:
        raise BadRequest(f"{name}: {info.name} has no column {column!r} to filter on")
    allowed = OPERATORS[spec.kind] | ({"null"} if spec.nullable else frozenset())
    if op not in allowed:
        listed = ", ".join(sorted(allowed)) or "none"
        raise BadRequest(f"{name}: {column} ({spec.kind}) has no operator {op!r}; "
                         f"allowed: {listed}")
    if raw == "":  # what a form sends for a filter field left empty: no filter
        return None
    return Filter(column, op, value_of(spec, op, raw, name), raw)


def encode_cursor(values: tuple[Any, Any]) -> str:
    # UTF-8 as it is: escaped to ASCII, a character could take 12 bytes instead of 4.
    raw = json.dumps([_plain(v) for v in values], separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    if isinstance(value, (uuid.UUID, Decimal)):
        return {"s": str(value)}
    return value.value if isinstance(value, enum.Enum) else value


def decode_cursor(info: TableInfo, sort: str, cursor: str) -> tuple[Any, Any]:
    """The (sort value, key) a cursor stands for, read back as the columns' kinds."""
    bad = BadRequest("after: is not a cursor of this view; start again from the first page")
    if len(cursor) > MAX_CURSOR or not _CURSOR.match(cursor):
        raise bad
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        value, key = decoded
        return _typed(info, sort, value), _typed(info, info.key, key)
    except (binascii.Error, ValueError, TypeError, UnicodeError, RecursionError, BadRequest):
        raise bad from None


def _typed(info: TableInfo, column: str, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, dict) and len(value) == 1:
        (tag, text), = value.items()
        value = text
        if tag not in ("t", "s") or not isinstance(text, str):
            raise ValueError(tag)
    spec = info.field(column)
    if spec is None or isinstance(value, (list, dict)):
        raise ValueError(column)
    if spec.kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(column)
        return value
    return value_of(spec, "eq", str(value), "after")


def listing(table: str, query: Mapping[str, str]) -> Listing:
    """The checked view of ``table`` that ``query`` (the request's parameters, each given
    once: ``forms.query``) asks for."""
    info = table_named(table)
    for name in query:
        if name not in KNOWN and not name.startswith("f."):
            raise BadRequest(f"unknown parameter {name[:40]!r}")
    sort = query.get("sort", info.key)
    if sort not in info.sortable:
        raise BadRequest(f"sort: {info.name} can be sorted by {', '.join(info.sortable)} "
                         f"(its indexed columns), not {sort[:40]!r}")
    direction = query.get("dir", "asc")
    if direction not in ("asc", "desc"):
        raise BadRequest("dir: must be asc or desc")
    deleted = query.get("deleted", "0")
    if deleted not in ("0", "1"):
        raise BadRequest("deleted: must be 1 (show soft-deleted rows) or 0")
    found = [_filter(info, n, query[n]) for n in query if n.startswith("f.")]
    filters = tuple(f for f in found if f is not None)
    after = query.get("after")
    return Listing(info, sort, direction == "desc", filters,
                   None if not after else decode_cursor(info, sort, after), deleted == "1")
