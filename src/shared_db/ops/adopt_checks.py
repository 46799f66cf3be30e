"""What ``migrate adopt`` proves about a database: that Prisma Migrate made it and nothing else
manages it, that every id it converts is a uuid, that no two ids of a key nor two emails differ
only in case, and that the data reads the same afterwards.

The data checksums reuse the backup manifests' (``ops.checksums``), over a row built column by
column so that the two sides compare values, not types: an id as its lower-case text (Prisma's
uuid() strings, and a uuid's own rendering), a Prisma timestamp as its text and the converted
one as the UTC wall-clock time of its instant, an email lower-cased before (as adopt stores it)
and as is after. Equal sums mean every row came through with the same id, the same values (its
email lower-cased) and the same moment in time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from shared_db.errors import AdoptionRefusedError
from shared_db.ops.adopt_columns import UUID, Plan
from shared_db.ops.adopt_plan import PRISMA_HISTORY, Shape
from shared_db.ops.checksums import table_checksum

_HISTORY_TABLES = """
SELECT c.relname FROM pg_class c
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'
  AND (c.relname = %s OR c.relname LIKE 'alembic\\_version\\_%%') ORDER BY c.relname"""
_HISTORY_COLUMNS = """
SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = %s
  AND a.attnum > 0 AND NOT a.attisdropped"""
PRISMA_COLUMNS = ("id", "checksum", "finished_at", "migration_name", "logs", "rolled_back_at",
                  "started_at", "applied_steps_count")
_PRISMA_MIGRATIONS = sql.SQL("SELECT migration_name, finished_at IS NOT NULL, "
                             "rolled_back_at IS NOT NULL FROM {} ORDER BY started_at, id")
_NOT_UUID = sql.SQL("SELECT count(*) OVER (), {}::text, {} FROM {} "
                    "WHERE {} !~* %s LIMIT 1")
# Values equal once lower-cased: as uuids (or as shared-db's lower-cased emails) they would be
# one value in a column the migrations make unique.
_SAME_LOWERED = sql.SQL("SELECT count(*) OVER (), string_agg({}::text, ', ' ORDER BY {}), "
                        "string_agg({}, ', ' ORDER BY {}) FROM {} WHERE {} IS NOT NULL "
                        "GROUP BY lower({}) HAVING count(*) > 1 ORDER BY 2 LIMIT 1")
_UUID_TEXT = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
Sums = dict[str, tuple[int, str]]


@dataclass(frozen=True)
class TableCheck:
    """One table's rows and checksum before the conversion and after it (None: not yet)."""

    table: str
    rows: int
    checksum: str
    rows_after: int | None = None
    checksum_after: str | None = None

    @property
    def ok(self) -> bool:
        return (self.rows, self.checksum) == (self.rows_after, self.checksum_after)


def prisma_history(conn: psycopg.Connection[Any], target: str) -> list[str]:
    """The Prisma migrations applied to the database, oldest first.

    Raises:
        AdoptionRefusedError: shared-db's migrations are recorded there already, Prisma Migrate
            did not make it, or a Prisma migration is unfinished.
    """
    tables = [t for (t,) in conn.execute(_HISTORY_TABLES, (PRISMA_HISTORY,))]
    ours = [t for t in tables if t != PRISMA_HISTORY]
    if ours:
        raise AdoptionRefusedError(
            f"{target}: already adopted, shared-db's migrations are recorded there "
            f"({', '.join(ours)}); use `migrate status` and `migrate deploy`")
    if PRISMA_HISTORY not in tables:
        raise AdoptionRefusedError(
            f"{target}: not made by Prisma Migrate (no {PRISMA_HISTORY} table); adopt converts "
            "a database Prisma Migrate built from the guide's schema (`migrate baseline` stamps "
            "one that already has shared-db's schema)")
    columns = {c for (c,) in conn.execute(_HISTORY_COLUMNS, (PRISMA_HISTORY,))}
    lacking = [c for c in PRISMA_COLUMNS if c not in columns]
    if lacking:
        raise AdoptionRefusedError(
            f"{target}: table {PRISMA_HISTORY} is not Prisma Migrate's history (it lacks "
            f"column(s) {', '.join(lacking)}); adopt converts a database Prisma Migrate built "
            "from the guide's schema; nothing was changed")
    rows = conn.execute(_PRISMA_MIGRATIONS.format(sql.Identifier(PRISMA_HISTORY))).fetchall()
    unfinished = [name for name, finished, rolled_back in rows if not finished and not rolled_back]
    if unfinished:
        raise AdoptionRefusedError(
            f"{target}: Prisma migration(s) {', '.join(unfinished)} did not finish; settle them "
            "with `prisma migrate resolve` first", [f"unfinished Prisma migration {n}"
                                                    for n in unfinished])
    applied = [name for name, finished, rolled_back in rows if finished and not rolled_back]
    if not applied:
        raise AdoptionRefusedError(f"{target}: {PRISMA_HISTORY} records no applied migration")
    return applied


def _key(shape: Shape, table: str) -> str:
    pkey = [d for t, k, d in shape.constraints.values() if t == table and k == "p"]
    inside = pkey[0].partition("(")[2].partition(")")[0] if pkey else ""
    return inside.split(",")[0].strip().strip('"') or next(iter(shape.columns[table]))


def not_uuids(conn: psycopg.Connection[Any], plan: Plan, shape: Shape) -> list[str]:
    """One line per column to convert to uuid that holds a value that is not one."""
    found = []
    for (table, column), kind in plan.conversions.items():
        if kind != UUID:
            continue
        key = _key(shape, table)
        row = conn.execute(_NOT_UUID.format(sql.Identifier(key), sql.Identifier(column),
                                            sql.Identifier(table), sql.Identifier(column)),
                           (_UUID_TEXT,)).fetchone()
        if row:
            count, sample_key, value = row
            found.append(f"{table}.{column}: {count} row(s) hold a value that is not a uuid, "
                         f"e.g. {key}={sample_key!r} holds {value!r}")
    return found


def same_lowered(conn: psycopg.Connection[Any], plan: Plan, shape: Shape) -> list[str]:
    """One line per column whose values, lower-cased, would break the migrations' unique key:
    uuid keys (the cast lower-cases them) and the lower-cased emails."""
    found = []
    for table, column in [*plan.unique, *plan.lowered]:
        key, col = sql.Identifier(_key(shape, table)), sql.Identifier(column)
        row = conn.execute(_SAME_LOWERED.format(key, key, col, col, sql.Identifier(table), col,
                                                col)).fetchone()
        if row:
            count, keys, values = row
            found.append(f"{table}.{column}: {count} value(s) are held by more than one row in "
                         f"different case, e.g. {values} ({_key(shape, table)} {keys}); "
                         "lower-cased they would be one value")
    return found


def _row(table: str, columns: list[str], plan: Plan, converted: bool) -> sql.Composable:
    values: list[sql.Composable] = []
    for name in columns:
        col, kind = sql.Identifier(name), plan.conversions.get((table, name))
        if kind is None:
            values.append(sql.SQL("lower({})").format(col)
                          if (table, name) in plan.lowered and not converted else col)
        elif kind == UUID:
            values.append(sql.SQL("{}::text" if converted else "lower({})").format(col))
        else:
            values.append(sql.SQL("({} AT TIME ZONE 'UTC')::text" if converted
                                  else "{}::text").format(col))
    return sql.SQL("(SELECT {} FROM {})").format(sql.SQL(", ").join(values),
                                                 sql.Identifier(table))


def data_sums(conn: psycopg.Connection[Any], plan: Plan, before: Shape,
              converted: bool) -> Sums:
    """Rows and checksum of each of Prisma's tables, over the columns Prisma made."""
    return {table: table_checksum(conn, _row(table, list(before.columns[table]), plan, converted))
            for table in plan.tables}


def compare(before: Sums, after: Sums) -> tuple[list[TableCheck], list[str]]:
    """The checks, and one line per table whose data differs."""
    checks = [TableCheck(t, rows, sum_, *after.get(t, (None, None)))
              for t, (rows, sum_) in before.items()]
    return checks, [f"data {c.table}: {c.rows} row(s) with checksum {c.checksum} before, "
                    f"{c.rows_after} row(s) with checksum {c.checksum_after} after"
                    for c in checks if not c.ok]
