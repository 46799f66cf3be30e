"""Migration chains: one Alembic version chain per service, plus ``links`` for the shared topology.

Each chain has its own folder of versions and its own version table (``alembic_version_<chain>``),
so a service's database carries only its own history. ``links`` holds what joins services (the
cross-service foreign keys and the ``payment_reports`` view) and is applied only when every
service lives in one database.

Revision ids are UTC timestamps (``YYYYMMDDHHMMSS``) and files are named ``<rev>_<name>.py``, like
the guide's migration folders. Across chains, migrations are ordered by revision id, ties broken by
``CHAINS`` order; ``deploy`` applies in that order and ``down`` undoes in reverse.
"""

from __future__ import annotations

from sqlalchemy import Enum, ForeignKeyConstraint, MetaData

from shared_db.models import Base  # every table registered: ownership is read off them
from shared_db.ops.versions import CHAINS as CHAINS
from shared_db.ops.versions import LINKS as LINKS
from shared_db.ops.versions import version_table as version_table


def tables_of(chain: str, metadata: MetaData | None = None) -> list[str]:
    """Names of the tables ``chain`` creates (none for ``links``)."""
    md = metadata or Base.metadata
    return [t.name for t in md.sorted_tables if t.info.get("service") == chain]


def enums_of(chain: str, metadata: MetaData | None = None) -> set[str]:
    """Names of the PostgreSQL enum types used by ``chain``'s tables."""
    md = metadata or Base.metadata
    return {
        str(col.type.name)
        for table in md.tables.values()
        if table.info.get("service") == chain
        for col in table.columns
        if isinstance(col.type, Enum) and col.type.name
    }


def is_cross_service(fk: ForeignKeyConstraint, metadata: MetaData | None = None) -> bool:
    """True for a foreign key whose two tables belong to different services."""
    md = metadata or Base.metadata
    parent, referred = md.tables.get(fk.table.name), md.tables.get(fk.referred_table.name)
    if parent is None or referred is None:
        return True
    return bool(parent.info.get("service") != referred.info.get("service"))


def chain_owns(chain: str, obj: object, name: str | None, type_: str,
               metadata: MetaData | None = None) -> bool:
    """Alembic ``include_object`` hook: does ``chain`` manage this schema object?"""
    md = metadata or Base.metadata
    if type_ == "table":
        table = md.tables.get(name or "")
        owner = None if table is None else table.info.get("service")
        return owner is not None if chain == LINKS else owner == chain
    if type_ == "foreign_key_constraint":
        assert isinstance(obj, ForeignKeyConstraint)
        return is_cross_service(obj, md) == (chain == LINKS)
    return chain != LINKS
