"""Steps that run outside a transaction, such as ``CREATE INDEX CONCURRENTLY``.

Such a build commits its catalog entry first and fills the index afterwards; killed (or timed
out on a lock) in between, it leaves an INVALID index that PostgreSQL keeps updating but never
uses, and that makes the same ``CREATE INDEX`` fail (or, with ``IF NOT EXISTS``, silently keep
the broken one). Before such a step runs, every index it builds that exists and is invalid is
dropped, concurrently too, so the step can simply be run again.
"""

from __future__ import annotations

from psycopg import sql
from sqlalchemy import Connection, text

INVALID = text(
    "SELECT n.nspname, c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE NOT i.indisvalid AND c.relname = ANY(:names) AND n.nspname = current_schema()")


def invalid_indexes(conn: Connection, names: list[str]) -> list[tuple[str, str]]:
    """(schema, index) of the named indexes that exist and are invalid."""
    found = [(row[0], row[1]) for row in conn.execute(INVALID, {"names": names})]
    conn.commit()
    return found


def drop_invalid(conn: Connection, names: list[str]) -> list[str]:
    """Drop the named indexes that a killed build left invalid; returns what was dropped."""
    dropped = []
    for schema, index in invalid_indexes(conn, names):
        level = conn.get_isolation_level()
        conn.commit()
        # DROP INDEX CONCURRENTLY refuses to run in a transaction block.
        conn.execution_options(isolation_level="AUTOCOMMIT")
        try:
            # Composed by psycopg, which quotes the names; run on the driver's connection so
            # no layer reads a '%' in a name as a placeholder.
            driver = conn.connection.driver_connection
            assert driver is not None
            driver.execute(sql.SQL(
                "DROP INDEX CONCURRENTLY IF EXISTS {}.{}").format(
                sql.Identifier(schema), sql.Identifier(index)))
            conn.commit()
        finally:
            conn.rollback()
            conn.execution_options(isolation_level=level)
        dropped.append(f"{schema}.{index}")
    return dropped
