"""What the studio knows of each table: its service, the columns it shows, how each column is
filtered, which columns it may sort on, and the records related to a row.

Everything is read off the models, so a new column shows up without a change here; only the
secrets (``password_hash``, token and request hashes) and the relations are listed by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Literal

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Enum,
    Numeric,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB

from shared_db.models import Base
from shared_db.services import SERVICES

Kind = Literal["text", "enum", "bool", "datetime", "number", "uuid", "json"]

HIDDEN: dict[str, frozenset[str]] = {
    "users": frozenset({"password_hash"}),
    "refresh_tokens": frozenset({"token"}),
}
"""Columns never read, let alone shown: secrets (a hash is as good as a password offline)."""
HIDDEN_EVERYWHERE = frozenset({"request_hash"})


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind
    nullable: bool
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Relation:
    """Rows of ``table`` whose ``column`` holds this row's ``key`` (``str(id)`` for text)."""

    label: str
    table: str
    column: str
    key: str = "id"
    also: tuple[tuple[str, str], ...] = ()
    """Further equalities the related rows must meet, e.g. ``resource_type = 'user'``."""


CHILDREN: dict[str, tuple[Relation, ...]] = {
    "users": (
        Relation("profile", "user_profiles", "user_id"),
        Relation("payments", "payments", "user_id"),
        Relation("sessions", "sessions", "user_id"),
        Relation("devices", "devices", "user_id"),
        Relation("refresh tokens", "refresh_tokens", "user_id"),
        Relation("audit rows", "audit_logs", "resource_id", also=(("resource_type", "user"),)),
    ),
    "payments": (
        Relation("transactions", "payment_transactions", "payment_id"),
        Relation("audit rows", "audit_logs", "resource_id", also=(("resource_type", "payment"),)),
    ),
    "devices": (Relation("sessions", "sessions", "device_id"),),
    "system_config": (
        Relation("audit rows", "audit_logs", "resource_id", key="key",
                 also=(("resource_type", "system_config"),)),
    ),
}
PARENTS: dict[tuple[str, str], str] = {
    ("user_profiles", "user_id"): "users", ("payments", "user_id"): "users",
    ("sessions", "user_id"): "users", ("devices", "user_id"): "users",
    ("refresh_tokens", "user_id"): "users", ("audit_logs", "user_id"): "users",
    ("sessions", "device_id"): "devices", ("sessions", "refresh_token_id"): "refresh_tokens",
    ("payment_transactions", "payment_id"): "payments",
}
"""Columns that point at another table's key: shown as links, across databases per service."""


def _kind(column: Column[object]) -> tuple[Kind, tuple[str, ...]]:
    kind = column.type
    if isinstance(kind, Enum):
        return "enum", tuple(kind.enums)
    if isinstance(kind, Boolean):
        return "bool", ()
    if isinstance(kind, DateTime):
        return "datetime", ()
    if isinstance(kind, Numeric):
        return "number", ()
    if isinstance(kind, Uuid):
        return "uuid", ()
    if isinstance(kind, JSONB):
        return "json", ()
    if isinstance(kind, Text):
        return "text", ()
    python = kind.python_type
    return ("number", ()) if python in (int, float, Decimal) else (
        "datetime", ()) if python is datetime else ("text", ())


@dataclass(frozen=True)
class TableInfo:
    name: str
    service: str
    table: Table
    key: str
    fields: tuple[Field, ...]
    sortable: tuple[str, ...]
    """The key and every column that leads an index: an ordered walk over them is an index
    scan, so a page deep in the table costs what the first one does."""

    @property
    def soft_delete(self) -> bool:
        return "deleted_at" in self.table.c

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)


def _info(table: Table) -> TableInfo:
    hidden = HIDDEN.get(table.name, frozenset()) | HIDDEN_EVERYWHERE
    fields = []
    for column in table.columns:
        if column.name in hidden:
            continue
        kind, choices = _kind(column)
        fields.append(Field(column.name, kind, bool(column.nullable), choices))
    (key,) = [c.name for c in table.primary_key.columns]
    leading = {next(iter(ix.columns)).name for ix in table.indexes if len(ix.columns)}
    leading |= {next(iter(uc.columns)).name for uc in table.constraints
                if isinstance(uc, UniqueConstraint) and len(uc.columns)}
    sortable = (key, *sorted(n for n in leading - {key} if n not in hidden
                             and _kind(table.c[n])[0] != "json"))
    return TableInfo(table.name, str(table.info["service"]), table, key, tuple(fields),
                     sortable)


@cache
def tables() -> dict[str, TableInfo]:
    """Every model table, by name, in service order."""
    found = [_info(t) for t in Base.metadata.sorted_tables if t.info.get("service")]
    found.sort(key=lambda t: (SERVICES.index(t.service), t.name))
    return {t.name: t for t in found}


def by_service() -> dict[str, list[TableInfo]]:
    groups: dict[str, list[TableInfo]] = {s: [] for s in SERVICES}
    for info in tables().values():
        groups[info.service].append(info)
    return groups
