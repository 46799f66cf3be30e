"""Read-only reports on a database; they return data and never print."""

from __future__ import annotations

from sqlalchemy import func, inspect, select

from shared_db.engine import connected, sync_engine
from shared_db.models import Base
from shared_db.ops.chains import tables_of
from shared_db.ops.targets import Target


def row_counts(target: Target) -> dict[str, int]:
    """Rows per table of ``target``'s chains, for tables that exist there."""
    counts: dict[str, int] = {}
    safe = target.connection.safe_url()
    with connected(sync_engine(target.connection), safe) as conn:
        present = set(inspect(conn).get_table_names(schema=target.connection.schema))
        for chain in target.chains:
            for name in tables_of(chain):
                if name in present:
                    table = Base.metadata.tables[name]
                    query = select(func.count()).select_from(table)
                    counts[name] = conn.execute(query).scalar_one()
    return counts
