"""The SQL that turns a Prisma-made schema into the one shared-db's migrations build.

Nothing here is written by hand per table: both schemas are read from PostgreSQL's catalog (the
Prisma database, and a scratch database built by the migrations), and every statement either
converts what Prisma made (TEXT ids to uuid, TIMESTAMP(3) to timestamptz read as UTC, defaults,
unique indexes to unique constraints) or replays the scratch database's own rendering of what is
missing (``pg_get_constraintdef``, ``pg_get_indexdef``, ``pg_get_functiondef``,
``pg_get_triggerdef``, the view's definition). A table, column, enum type or value it cannot
convert, a view reading the tables (its columns could not change type), and a table or type of
the guide's that Prisma's database lacks (a Prisma migration not applied) are refused before a
statement runs (adopt converts the guide's schema, not one that grew beside it or stopped short
of it); anything else that differs, such as an index of Prisma's own, is left for the catalog
comparison before COMMIT to find. Emails are lower-cased on the way (``LOWER_CASED``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from shared_db.ops.adopt_columns import (
    LOWER_CASED,
    UUID,
    Column,
    Plan,
    Statement,
    definition,
    table_statements,
)

PRISMA_HISTORY = "_prisma_migrations"

_COLUMNS = """
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid)
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
  AND a.attnum > 0 AND NOT a.attisdropped AND c.relname NOT LIKE 'alembic\\_version\\_%'
ORDER BY c.relname, a.attnum"""
_CONSTRAINTS = """
SELECT c.relname, k.conname, k.contype, pg_get_constraintdef(k.oid)
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
WHERE k.connamespace = current_schema()::regnamespace AND k.contype IN ('p', 'u', 'f', 'c', 'x')
  AND c.relname NOT LIKE 'alembic\\_version\\_%'"""
_INDEXES = """
SELECT t.relname, i.relname, pg_get_indexdef(i.oid),
       EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.oid AND k.conrelid = t.oid
               AND k.contype IN ('p', 'u', 'x'))
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
WHERE t.relnamespace = current_schema()::regnamespace
  AND t.relname NOT LIKE 'alembic\\_version\\_%'"""
_FUNCTIONS = """
SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc p
WHERE p.pronamespace = current_schema()::regnamespace AND p.prokind IN ('f', 'p')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')"""
_TRIGGERS = """
SELECT t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace"""
_KEYED = """
SELECT c.relname, a.attname FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY (x.indkey)
WHERE c.relnamespace = current_schema()::regnamespace
UNION
SELECT c.relname, a.attname FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY (k.conkey)
WHERE c.relnamespace = current_schema()::regnamespace AND k.contype <> 'n'"""
_VIEWS = "SELECT viewname, definition FROM pg_views WHERE schemaname = current_schema()"
_ENUMS = """
SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_type t
JOIN pg_enum e ON e.enumtypid = t.oid
WHERE t.typnamespace = current_schema()::regnamespace GROUP BY t.typname ORDER BY t.typname"""
# Views and materialized views of any schema over the tables: a column one reads cannot change
# type, so each would stop the conversion part-way.
_DEPENDENT_VIEWS = """
SELECT DISTINCT v.relnamespace::regnamespace::text, v.relname, v.relkind, t.relname
FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid JOIN pg_class v ON v.oid = r.ev_class
JOIN pg_class t ON t.oid = d.refobjid
WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
  AND t.relnamespace = current_schema()::regnamespace AND t.relkind IN ('r', 'p')
  AND v.oid <> t.oid ORDER BY 1, 2, 4"""
OWN_TABLE_SUFFIX = "_idempotency_keys"
"""The only tables the migrations make that the guide's Prisma schema does not; any other table
Prisma's database lacks means a Prisma migration was not applied."""


@dataclass
class Shape:
    """What ``adopt`` needs of one schema: columns in table order, and each object's rendering."""

    columns: dict[str, dict[str, Column]] = field(default_factory=dict)
    constraints: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    """name -> (table, contype, definition)"""
    indexes: dict[str, tuple[str, str, bool]] = field(default_factory=dict)
    """name -> (table, definition, backs a constraint)"""
    functions: dict[str, str] = field(default_factory=dict)
    triggers: dict[str, str] = field(default_factory=dict)
    views: dict[str, str] = field(default_factory=dict)
    keyed: set[tuple[str, str]] = field(default_factory=set)
    """(table, column) of every column an index or a constraint uses"""
    enums: dict[str, list[str]] = field(default_factory=dict)
    """type -> its values, in order"""
    dependent_views: list[tuple[str, str, str, str]] = field(default_factory=list)
    """(schema, view, relkind, table) of every view reading one of the tables"""


def read_shape(conn: psycopg.Connection[Any]) -> Shape:
    """The shape of ``conn``'s current schema, read in its open transaction."""
    shape = Shape()
    for table, name, type_, not_null, default in conn.execute(_COLUMNS):
        shape.columns.setdefault(table, {})[name] = Column(type_, not_null, default)
    shape.constraints = {n: (t, k, d) for t, n, k, d in conn.execute(_CONSTRAINTS)}
    shape.indexes = {n: (t, d, b) for t, n, d, b in conn.execute(_INDEXES)}
    shape.functions = dict(conn.execute(_FUNCTIONS).fetchall())
    shape.triggers = dict(conn.execute(_TRIGGERS).fetchall())
    shape.views = {n: d.strip().rstrip(";") for n, d in conn.execute(_VIEWS)}
    shape.keyed = {(t, c) for t, c in conn.execute(_KEYED)}
    shape.enums = {n: list(v) for n, v in conn.execute(_ENUMS)}
    shape.dependent_views = [(n, v, k, t) for n, v, k, t in conn.execute(_DEPENDENT_VIEWS)]
    return shape


def _refusals(have: Shape, want: Shape) -> list[str]:
    """What Prisma's database has or lacks that no statement of adopt's can convert."""
    found = [f"{'materialized view' if kind == 'm' else 'view'} {schema}.{view} reads table "
             f"{table}, whose columns adopt converts; drop it, adopt, then create it again"
             for schema, view, kind, table in have.dependent_views]
    found += [f"type {t} is not in shared-db's schema" for t in have.enums if t not in want.enums]
    for name, values in have.enums.items():
        found += [f"type {name} has value {v!r}, which shared-db's schema does not" for v in values
                  if name in want.enums and v not in want.enums[name]]
    missing = [f"type {t}" for t in want.enums if t not in have.enums]
    missing += [f"table {t}" for t in want.columns if t not in have.columns
                and not t.endswith(OWN_TABLE_SUFFIX)]
    found += [f"{m} is missing: the guide's Prisma migrations make it, and adopt converts a "
              "database they were all applied to (`prisma migrate deploy`)" for m in missing]
    return found


def _constraints(have: Shape, want: Shape) -> list[Statement]:
    statements: list[Statement] = []
    for name, (table, kind, _) in want.constraints.items():
        found = have.indexes.get(name)
        # Prisma makes @unique a unique index; shared-db a constraint owning that index.
        if kind == "u" and name not in have.constraints and found and not found[2]:
            statements.append(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} UNIQUE USING INDEX {}")
                              .format(sql.Identifier(table), sql.Identifier(name),
                                      sql.Identifier(name)))
    for order in ("pucx", "f"):
        for name, (table, kind, rendered) in want.constraints.items():
            if kind in order and (kind == "f" or name not in have.constraints) \
                    and name not in have.indexes:
                statements.append(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                    sql.Identifier(table), sql.Identifier(name), sql.SQL(rendered)))
    return statements


def plan_adoption(have: Shape, want: Shape) -> Plan:
    """The statements converting ``have`` (Prisma's) into ``want`` (the migrations')."""
    plan = Plan(tables=[t for t in have.columns if t != PRISMA_HISTORY])
    plan.refusals += [f"table {t} is not in shared-db's schema" for t in plan.tables
                      if t not in want.columns]
    plan.refusals += _refusals(have, want)
    plan.statements.append(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(
        sql.SQL(", ").join(sql.Identifier(t) for t in have.columns)))
    plan.lowered = [(t, c) for t, c in LOWER_CASED if c in have.columns.get(t, {})]
    plan.statements += [sql.SQL("UPDATE {} SET {} = lower({}) WHERE {} <> lower({})").format(
        sql.Identifier(t), *[sql.Identifier(c)] * 4) for t, c in plan.lowered]
    # Foreign keys go first: a key column's type cannot change while a constraint ties it to
    # the other side; they come back as the migrations define them.
    plan.statements += [sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
        sql.Identifier(table), sql.Identifier(name))
        for name, (table, kind, _) in have.constraints.items() if kind == "f"]
    for table, columns in want.columns.items():
        if table in have.columns:
            plan.statements += table_statements(plan, table, have.columns[table], columns,
                                                have.keyed)
        else:
            plan.statements.append(sql.SQL("CREATE TABLE {} ({})").format(
                sql.Identifier(table), sql.SQL(", ").join(
                    sql.SQL("{} {}").format(sql.Identifier(n), definition(c))
                    for n, c in columns.items())))
    plan.statements += _constraints(have, want)
    plan.unique = [(t, c) for t, k, d in want.constraints.values() if k in "pu"
                   for c in [d.partition("(")[2].partition(")")[0].strip('"')]
                   if plan.conversions.get((t, c)) == UUID]
    plan.statements += [sql.SQL(d) for n, (_, d, backs) in want.indexes.items()
                        if not backs and n not in have.indexes]
    plan.statements += [sql.SQL(d) for n, d in want.functions.items() if n not in have.functions]
    plan.statements += [sql.SQL(d) for n, d in want.triggers.items() if n not in have.triggers]
    plan.statements += [sql.SQL("CREATE VIEW {} AS {}").format(sql.Identifier(n), sql.SQL(d))
                        for n, d in want.views.items() if n not in have.views]
    if PRISMA_HISTORY in have.columns:
        plan.statements.append(sql.SQL("DROP TABLE {}").format(sql.Identifier(PRISMA_HISTORY)))
    return plan
