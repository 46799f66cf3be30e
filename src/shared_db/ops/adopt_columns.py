"""The column statements of ``migrate adopt``: Prisma's columns converted in place, the missing
ones added, and the order of every table made the migrations' own.

Column order is kept because rows are compared as wholes elsewhere (``split`` and backups check
``md5(row::text)`` between databases): a column Prisma lacks (``users.deleted_at``) cannot just be
appended when the migrations put columns after it, so those later columns are rebuilt at the end
of the table, filled from the old ones (converted on the way), and take their names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from psycopg import sql

UUID, TIMESTAMPTZ = "uuid", "timestamp with time zone"
Statement = sql.SQL | sql.Composed
LOWER_CASED = (("users", "email"),)
"""Columns shared-db keeps lower-cased (``validation.email`` lower-cases every address it writes
and looks up) and Prisma keeps as written: left as they are, such an address could never be
found again, and the same address in lower case could make a second account."""


@dataclass(frozen=True)
class Column:
    type: str
    not_null: bool
    default: str | None


@dataclass
class Plan:
    """The statements, in order, and the columns whose values they convert."""

    statements: list[Statement] = field(default_factory=list)
    conversions: dict[tuple[str, str], str] = field(default_factory=dict)
    """(table, column) -> UUID or TIMESTAMPTZ"""
    refusals: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    """The tables Prisma made that hold the services' data (its history table left out)."""
    lowered: list[tuple[str, str]] = field(default_factory=list)
    """(table, column) of the ``LOWER_CASED`` columns Prisma made, lower-cased by the plan."""
    unique: list[tuple[str, str]] = field(default_factory=list)
    """(table, column) converted to uuid that the migrations make a primary key or unique."""


def _conversion(have: Column, want: Column) -> str | None:
    if want.type == UUID and have.type == "text":
        return UUID
    if want.type == TIMESTAMPTZ and have.type.startswith("timestamp") \
            and have.type.endswith("without time zone"):
        return TIMESTAMPTZ
    return None


def _value(kind: str | None, name: str) -> sql.Composable:
    col = sql.Identifier(name)
    if kind == UUID:
        return sql.SQL("{}::uuid").format(col)
    if kind == TIMESTAMPTZ:
        return sql.SQL("{} AT TIME ZONE 'UTC'").format(col)
    return col


def _moved(have: dict[str, Column], want: dict[str, Column]) -> list[str]:
    """Prisma's columns to rebuild at the end of the table so that it ends in ``want``'s order:
    those after the longest start of ``want`` that ``have`` already holds in that order."""
    return [n for n in list(want)[_kept(have, want):] if n in have]


def _kept(have: dict[str, Column], want: dict[str, Column]) -> int:
    """How many of ``want``'s first columns ``have`` already holds in that order."""
    position = {n: i for i, n in enumerate(have)}
    last, kept = -1, 0
    for name in want:
        if position.get(name, -1) <= last:
            break
        last, kept = position[name], kept + 1
    return kept


def _in_place(plan: Plan, table: str, name: str, found: Column, wanted: Column,
              kind: str | None) -> list[sql.Composable]:
    col, default = sql.Identifier(name), found.default
    actions: list[sql.Composable] = []
    if kind is not None:
        if default is not None:
            actions.append(sql.SQL("ALTER COLUMN {} DROP DEFAULT").format(col))
            default = None
        actions.append(sql.SQL("ALTER COLUMN {} TYPE {} USING {}").format(
            col, sql.SQL(wanted.type), _value(kind, name)))
    if default != wanted.default:
        actions.append(sql.SQL("ALTER COLUMN {} SET DEFAULT {}").format(
            col, sql.SQL(wanted.default)) if wanted.default is not None
            else sql.SQL("ALTER COLUMN {} DROP DEFAULT").format(col))
    if found.not_null != wanted.not_null:
        actions.append(sql.SQL("ALTER COLUMN {} {} NOT NULL").format(
            col, sql.SQL("SET" if wanted.not_null else "DROP")))
    return actions


def definition(column: Column) -> sql.Composable:
    """``type [DEFAULT expr] [NOT NULL]``, as in a column list."""
    default = sql.SQL(" DEFAULT {}").format(sql.SQL(column.default)) if column.default \
        else sql.SQL("")
    return sql.SQL("{}{}{}").format(sql.SQL(column.type), default,
                                    sql.SQL(" NOT NULL" if column.not_null else ""))


def _alter(table: str, actions: list[sql.Composable]) -> Statement:
    return sql.SQL("ALTER TABLE {} ").format(sql.Identifier(table)) + sql.SQL(", ").join(actions)


def table_statements(plan: Plan, table: str, have: dict[str, Column], want: dict[str, Column],
                     keyed: set[tuple[str, str]]) -> list[Statement]:
    """Statements making ``table``'s columns (``have``) the migrations' (``want``)."""
    plan.refusals += [f"column {table}.{n} is not in shared-db's schema" for n in have
                      if n not in want]
    moved = _moved(have, want)
    if moved:
        # What starts the rebuild: a column Prisma lacks, or one Prisma has elsewhere.
        start = list(want)[_kept(have, want)]
        why = (f"after the new column {table}.{start}" if start not in have else
               f"as from {table}.{start} on the columns' order differs from the migrations'")
        plan.refusals += [f"column {table}.{n} must move to the end of the table {why}, and has "
                          "an index or constraint; adopt rebuilds only plain columns"
                          for n in moved if (table, n) in keyed]
    first: list[sql.Composable] = []
    fill: list[sql.Composable] = []
    temporary = {n: f"adopt_{n}"[:63] for n in moved}
    for name, wanted in want.items():
        if name not in have:
            first.append(sql.SQL("ADD COLUMN {} {}").format(sql.Identifier(name),
                                                             definition(wanted)))
            continue
        found, kind = have[name], None
        if found.type != wanted.type:
            kind = _conversion(found, wanted)
            if kind is None:
                plan.refusals.append(f"column {table}.{name} is {found.type}; shared-db's is "
                                     f"{wanted.type}, and adopt converts only text ids to uuid "
                                     "and timestamps to timestamptz")
                continue
            plan.conversions[(table, name)] = kind
        if name in temporary:
            first.append(sql.SQL("ADD COLUMN {} {}").format(sql.Identifier(temporary[name]),
                                                             sql.SQL(wanted.type)))
            fill.append(sql.SQL("{} = {}").format(sql.Identifier(temporary[name]),
                                                  _value(kind, name)))
        else:
            first += _in_place(plan, table, name, found, wanted, kind)
    statements = [_alter(table, first)] if first else []
    if not moved:
        return statements
    statements.append(sql.SQL("UPDATE {} SET {}").format(sql.Identifier(table),
                                                          sql.SQL(", ").join(fill)))
    statements.append(_alter(table, [sql.SQL("DROP COLUMN {}").format(sql.Identifier(n))
                                     for n in moved]))
    statements += [sql.SQL("ALTER TABLE {} RENAME COLUMN {} TO {}").format(
        sql.Identifier(table), sql.Identifier(temporary[n]), sql.Identifier(n)) for n in moved]
    settle = [a for n in moved for a in _in_place(plan, table, n, Column(want[n].type, False, None),
                                                  want[n], None)]
    return statements + ([_alter(table, settle)] if settle else [])
