"""The studio's reads: row counts, keyset pages, one record and its related records.

Each statement is built from the catalog (only its columns, never a hidden one), with every
value a bound parameter, and runs through ``Database.executor`` on the database that holds
the table, so the same code serves one shared database and four per-service ones.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, func, literal_column, or_, select, tuple_
from sqlalchemy.sql import Select

from shared_db.client import Database
from shared_db.sql import Query
from shared_db.studio.catalog import CHILDREN, Relation, TableInfo, tables
from shared_db.studio.query import PAGE, Listing, encode_cursor

Row = dict[str, Any]
RELATED_SHOWN = 10


@dataclass(frozen=True)
class Page:
    rows: list[Row]
    next_cursor: str | None


@dataclass(frozen=True)
class Related:
    relation: Relation
    count: int
    rows: list[Row]
    filters: dict[str, str]
    """The table view's parameters that list all of them."""


async def _rows(db: Database, info: TableInfo, name: str, statement: Select[Any],
                params: dict[str, Any]) -> list[Row]:
    names = [f.name for f in info.fields]
    async with db.executor(info.service) as ex:
        cursor = await ex.cursor(Query.build(f"studio.{name}", statement), params)
        return [dict(zip(names, r, strict=True)) for r in await cursor.fetchall()]


async def _scalar(db: Database, info: TableInfo, name: str, statement: Select[Any],
                  params: dict[str, Any]) -> Any:
    async with db.executor(info.service) as ex:
        return await ex.scalar(Query.build(f"studio.{name}", statement), params)


def _select(info: TableInfo) -> Select[Any]:
    return select(*[info.table.c[f.name] for f in info.fields])


def _conditions(view: Listing, params: dict[str, Any]) -> list[ColumnElement[bool]]:
    table = view.table.table
    found: list[ColumnElement[bool]] = []
    if view.table.soft_delete and not view.include_deleted:
        found.append(table.c.deleted_at.is_(None))
    for n, f in enumerate(view.filters):
        column, slot = table.c[f.column], f"f{n}"
        if f.op == "null":
            found.append(column.is_(None) if f.value else column.is_not(None))
            continue
        params[slot] = f.value
        value = bindparam(slot, type_=column.type)
        if f.op == "contains":  # strpos, not LIKE: % and _ in the value mean themselves
            found.append(func.strpos(column, value) > literal_column("0"))
        elif f.op == "gte":
            found.append(column >= value)
        elif f.op == "lte":
            found.append(column <= value)
        else:
            found.append(column == value)
    return found


def _after(view: Listing, params: dict[str, Any]) -> ColumnElement[bool] | None:
    """Rows after the cursor in ``ORDER BY sort, key`` (NULLs last ascending, first
    descending: PostgreSQL's defaults, which its indexes are read in)."""
    if view.after is None:
        return None
    table = view.table.table
    sort, key = table.c[view.sort], table.c[view.table.key]
    value, params["after_key"] = view.after
    last_key = bindparam("after_key", type_=key.type)
    if sort is key:
        return key < last_key if view.descending else key > last_key
    if value is None:
        beyond = key < last_key if view.descending else key > last_key
        nulls = and_(sort.is_(None), beyond)
        return or_(nulls, sort.is_not(None)) if view.descending else nulls
    params["after_value"] = value
    pair = tuple_(sort, key)
    last = tuple_(bindparam("after_value", type_=sort.type), last_key)
    return pair < last if view.descending else or_(pair > last, sort.is_(None))


async def page(db: Database, view: Listing) -> Page:
    """One page of ``view`` (and the cursor of the next), by an index walk at any depth."""
    info, params = view.table, dict[str, Any]()
    conditions = _conditions(view, params)
    after = _after(view, params)
    if after is not None:
        conditions.append(after)
    columns = [info.table.c[c] for c in dict.fromkeys((view.sort, info.key))]
    order = [c.desc() if view.descending else c.asc() for c in columns]
    params["limit"] = PAGE + 1
    statement = _select(info).where(*conditions).order_by(*order).limit(bindparam("limit"))
    rows = await _rows(db, info, f"{info.name}.page", statement, params)
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    last = rows[-1] if rows else None
    cursor = encode_cursor((last[view.sort], last[info.key])) if more and last else None
    return Page(rows, cursor)


async def counts(db: Database) -> dict[str, int]:
    """Rows per table (soft-deleted users included), each from its own database."""
    infos = list(tables().values())
    found = await asyncio.gather(*[
        _scalar(db, i, f"{i.name}.count", select(func.count()).select_from(i.table), {})
        for i in infos])
    return {i.name: int(n) for i, n in zip(infos, found, strict=True)}


async def record(db: Database, info: TableInfo, key: Any) -> Row | None:
    statement = _select(info).where(info.table.c[info.key] == bindparam("key"))
    rows = await _rows(db, info, f"{info.name}.record", statement, {"key": key})
    return rows[0] if rows else None


async def _related(db: Database, row: Row, relation: Relation) -> Related:
    info = tables()[relation.table]
    table = info.table
    key = row[relation.key]
    spec = info.field(relation.column)
    if spec is not None and spec.kind == "text":
        key = str(key)
    params: dict[str, Any] = {"key": key, "limit": RELATED_SHOWN}
    where = [table.c[relation.column] == bindparam("key")]
    for n, (column, value) in enumerate(relation.also):
        params[f"also{n}"] = value
        where.append(table.c[column] == bindparam(f"also{n}"))
    order = table.c.created_at.desc() if "created_at" in table.c else table.c[info.key].asc()
    rows_query = _select(info).where(*where).order_by(order, table.c[info.key]).limit(
        bindparam("limit"))
    count_query = select(func.count()).select_from(table).where(*where)
    count = await _scalar(db, info, f"{info.name}.related_count", count_query,
                          {k: v for k, v in params.items() if k != "limit"})
    rows = await _rows(db, info, f"{info.name}.related", rows_query, params)
    filters = {f"f.{relation.column}.eq": str(key),
               **{f"f.{c}.eq": v for c, v in relation.also}}
    if info.soft_delete:
        filters["deleted"] = "1"
    return Related(relation, int(count), rows, filters)


async def related(db: Database, info: TableInfo, row: Row) -> list[Related]:
    """The records ``CHILDREN`` lists for ``row``, counted, the newest few of each."""
    return list(await asyncio.gather(*[_related(db, row, r)
                                       for r in CHILDREN.get(info.name, ())]))
