"""A schema read from PostgreSQL's catalog, for proving two databases have the same one.

Autogenerate's comparison knows only what the models declare; this reads everything a migration
can make in the schema: columns (type, nullability, default), constraints, indexes, enum labels,
views, triggers and functions, each rendered by PostgreSQL itself (``pg_get_*def``), so equal
text means an equal object. Alembic's version tables are left out.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

QUERIES = {
    "column": """
        SELECT c.relname || '.' || a.attname,
               format_type(a.atttypid, a.atttypmod)
               || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE ' NULL' END
               || coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
          AND a.attnum > 0 AND NOT a.attisdropped AND c.relname NOT LIKE 'alembic\\_version\\_%'""",
    "constraint": """
        SELECT c.relname || '.' || k.conname, pg_get_constraintdef(k.oid)
        FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
        WHERE k.connamespace = current_schema()::regnamespace AND k.contype <> 'n'
          AND c.relname NOT LIKE 'alembic\\_version\\_%'""",
    "index": """
        SELECT indexname, indexdef FROM pg_indexes
        WHERE schemaname = current_schema() AND tablename NOT LIKE 'alembic\\_version\\_%'""",
    "enum": """
        SELECT t.typname, string_agg(e.enumlabel, ', ' ORDER BY e.enumsortorder)
        FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
        WHERE t.typnamespace = current_schema()::regnamespace GROUP BY t.typname""",
    "view": """
        SELECT viewname, regexp_replace(definition, '\\s+', ' ', 'g') FROM pg_views
        WHERE schemaname = current_schema()""",
    "trigger": """
        SELECT c.relname || '.' || t.tgname, pg_get_triggerdef(t.oid)
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace""",
    "function": """
        SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
               md5(pg_get_functiondef(p.oid))
        FROM pg_proc p WHERE p.pronamespace = current_schema()::regnamespace
          AND p.prokind IN ('f', 'p')
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')""",
}


def read_schema(conn: Connection) -> dict[tuple[str, str], str]:
    """(kind, name) -> PostgreSQL's own rendering, for every object of the current schema."""
    found = schema_in_transaction(conn)
    conn.rollback()
    return found


def schema_in_transaction(conn: Connection) -> dict[tuple[str, str], str]:
    """``read_schema`` inside the connection's open transaction, which it leaves open (to see
    a change before it commits)."""
    return {(kind, str(name)): str(definition)
            for kind, query in QUERIES.items()
            for name, definition in conn.execute(text(query))}


def differences(database: dict[tuple[str, str], str], wanted: dict[tuple[str, str], str],
                ) -> list[str]:
    """One line per object that is missing, extra or different in ``database``."""
    lines = []
    for key in sorted(database.keys() | wanted.keys()):
        kind, name = key
        if key not in wanted:
            lines.append(f"{kind} {name}: in the database, not made by the migrations")
        elif key not in database:
            lines.append(f"{kind} {name}: made by the migrations, missing in the database")
        elif database[key] != wanted[key]:
            lines.append(f"{kind} {name}: the database has {database[key]!r}, the migrations "
                         f"make {wanted[key]!r}")
    return lines
