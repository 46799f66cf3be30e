"""Drift: the differences between the models and a database, found by Alembic's autogenerate
comparison scoped chain by chain (``env.py`` and ``migrate dev`` use the same scoping)."""

from __future__ import annotations

from typing import Any

import alembic_postgresql_enum
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic_postgresql_enum.configuration import Config as EnumConfig
from sqlalchemy import Connection, MetaData

from shared_db.models import Base
from shared_db.ops.chains import chain_owns, enums_of, version_table


def chain_options(chain: str, metadata: MetaData) -> dict[str, Any]:
    """Autogenerate options scoping a comparison to ``chain``'s objects (env.py uses them too)."""
    owned_enums = enums_of(chain, metadata)
    # alembic-postgresql-enum reads one global configuration; set it for this chain.
    alembic_postgresql_enum.set_configuration(
        EnumConfig(include_name=lambda name: name in owned_enums))

    def include_object(obj: Any, name: str | None, type_: str, reflected: bool,
                       compare_to: Any) -> bool:
        return chain_owns(chain, obj, name, type_, metadata)

    return {
        "target_metadata": metadata,
        "version_table": version_table(chain),
        "include_object": include_object,
        "compare_type": True,
        "compare_server_default": True,
    }


def _describe(diff: Any) -> str:
    """One readable line for an autogenerate diff (a tuple, a list of tuples, or an op)."""
    if isinstance(diff, list):
        return "; ".join(_describe(d) for d in diff)
    if not isinstance(diff, tuple):
        return type(diff).__name__
    kind, *rest = diff
    if kind.startswith("modify_"):
        _schema, table, column, _existing, old, new = rest
        old, new = (getattr(v, "arg", v) for v in (old, new))
        return f"{kind} {table}.{column}: database {_text(old)}, models {_text(new)}"
    if kind in ("add_column", "remove_column"):
        return f"{kind} {rest[1]} {rest[2].name}{_side(kind)}"
    if kind == "change_enum_variants":
        name = [x for x in rest if isinstance(x, str)][-1:]
        labels = [x for x in rest if isinstance(x, list) and all(isinstance(v, str) for v in x)]
        return f"{kind} {' '.join(name)}: database {labels[0]}, models {labels[-1]}"
    names = [str(getattr(x, "name", x)) for x in rest if x is not None]
    return f"{kind} {' '.join(names[:2])}{_side(kind)}"


def _side(kind: str) -> str:
    # The diff is named for the operation that would make the database match the models: a
    # column added by hand reads "remove_column", which alone suggests it was removed.
    if kind.startswith("add_"):
        return " (in the models, not in the database)"
    if kind.startswith("remove_"):
        return " (in the database, not in the models)"
    return ""


def _text(value: Any) -> str:
    return str(getattr(value, "text", value))


def drift(connection: Connection, chains: tuple[str, ...],
          metadata: MetaData | None = None) -> list[str]:
    """Differences between the models and the database, one line each, chain by chain."""
    md = metadata or Base.metadata
    lines: list[str] = []
    for chain in chains:
        context = MigrationContext.configure(connection, opts=chain_options(chain, md))
        lines += [f"{chain}: {_describe(d)}" for d in compare_metadata(context, md)]
    connection.rollback()
    return lines
