"""A schema read from PostgreSQL's catalog, for proving two databases have the same one.

Autogenerate's comparison knows only what the models declare; this reads everything a migration
can make in the schema: columns (type, nullability, default), constraints, indexes, enum labels,
views, triggers and functions, each rendered by PostgreSQL itself (``pg_get_*def``), so equal
text means an equal object. Alembic's version tables are left out, and so is whatever an
extension made (``pg_stat_statements``'s views, which ``shared-db stats`` installs): the extension
owns those, not the migrations.
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
          AND a.attnum > 0 AND NOT a.attisdropped AND c.relname NOT LIKE 'alembic\\_version\\_%'
          AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = 'pg_class'::regclass
                          AND x.objid = c.oid AND x.deptype = 'e')""",
    "constraint": """
        SELECT c.relname || '.' || k.conname, pg_get_constraintdef(k.oid)
        FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
        WHERE k.connamespace = current_schema()::regnamespace AND k.contype <> 'n'
          AND c.relname NOT LIKE 'alembic\\_version\\_%'
          AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = 'pg_class'::regclass
                          AND x.objid = c.oid AND x.deptype = 'e')""",
    "index": """
        SELECT i.indexname, i.indexdef FROM pg_indexes i
        JOIN pg_class c ON c.relname = i.tablename
         AND c.relnamespace = current_schema()::regnamespace
        WHERE i.schemaname = current_schema() AND i.tablename NOT LIKE 'alembic\\_version\\_%'
          AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = 'pg_class'::regclass
                          AND x.objid = c.oid AND x.deptype = 'e')""",
    "enum": """
        SELECT t.typname, string_agg(e.enumlabel, ', ' ORDER BY e.enumsortorder)
        FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
        WHERE t.typnamespace = current_schema()::regnamespace
          AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = 'pg_type'::regclass
                          AND x.objid = t.oid AND x.deptype = 'e')
        GROUP BY t.typname""",
    "view": """
        SELECT v.viewname, regexp_replace(v.definition, '\\s+', ' ', 'g') FROM pg_views v
        JOIN pg_class c ON c.relname = v.viewname
         AND c.relnamespace = current_schema()::regnamespace
        WHERE v.schemaname = current_schema()
          AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = 'pg_class'::regclass
                          AND x.objid = c.oid AND x.deptype = 'e')""",
    "trigger": """
        SELECT c.relname || '.' || t.tgname, pg_get_triggerdef(t.oid)
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace
          AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = 'pg_class'::regclass
                          AND x.objid = c.oid AND x.deptype = 'e')""",
    "function": """
        SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
               md5(pg_get_functiondef(p.oid))
        FROM pg_proc p WHERE p.pronamespace = current_schema()::regnamespace
          AND p.prokind IN ('f', 'p')
          AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = 'pg_proc'::regclass
                          AND x.objid = p.oid AND x.deptype = 'e')""",
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
