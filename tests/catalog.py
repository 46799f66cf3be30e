"""Independent read of the PostgreSQL catalog, for comparing schemas in tests."""

from __future__ import annotations

from typing import Any

import psycopg

COLUMNS = """
SELECT c.table_name, c.column_name,
       format_type(a.atttypid, a.atttypmod) AS type,
       c.is_nullable = 'YES' AS nullable,
       c.column_default
FROM information_schema.columns c
JOIN pg_attribute a
  ON a.attrelid = (quote_ident(c.table_schema) || '.' || quote_ident(c.table_name))::regclass
                   AND a.attname = c.column_name
WHERE c.table_schema = 'public'
ORDER BY c.table_name, c.ordinal_position
"""
CONSTRAINTS = """
SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
FROM pg_constraint WHERE connamespace = 'public'::regnamespace AND conrelid <> 0
  AND contype <> 'n'
"""
INDEXES = "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
ENUMS = """
SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)
FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
WHERE t.typnamespace = 'public'::regnamespace GROUP BY t.typname
"""
VIEWS = "SELECT viewname, definition FROM pg_views WHERE schemaname = 'public'"
TRIGGERS = """
SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid)
FROM pg_trigger WHERE NOT tgisinternal
"""
FUNCTIONS = """
SELECT p.proname FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
"""


def snapshot(url: str, *, version_tables: bool = False) -> dict[str, Any]:
    """Everything about the public schema that a migration may change.

    Alembic's version tables are left out unless asked for: they outlive a downgrade to base.
    """
    snap = _snapshot(url)
    if not version_tables:
        for part in ("tables", "constraints", "indexes"):
            snap[part] = {k: v for k, v in snap[part].items()
                          if not (k if isinstance(k, str) else k[0]).startswith("alembic_version_")}
    return snap


def _snapshot(url: str) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        tables: dict[str, dict[str, tuple[Any, ...]]] = {}
        for table, column, type_, nullable, default in conn.execute(COLUMNS):
            tables.setdefault(table, {})[column] = (type_, nullable, default)
        return {
            "tables": tables,
            "constraints": {(t, n): d for t, n, d in conn.execute(CONSTRAINTS)},
            "indexes": {(t, n): d for t, n, d in conn.execute(INDEXES)},
            "enums": {n: list(labels) for n, labels in conn.execute(ENUMS)},
            "views": {n: " ".join(d.split()) for n, d in conn.execute(VIEWS)},
            "triggers": {(t, n): d for t, n, d in conn.execute(TRIGGERS)},
            "functions": sorted(r[0] for r in conn.execute(FUNCTIONS)),
        }
