"""Health reports (guide 9.2): table sizes, index usage, unused and duplicate indexes, and the
top statements from ``pg_stat_statements``. They return dataclasses and never print.

The guide's size query builds the name as ``schemaname||'.'||tablename``, which breaks on names
that need quoting; these queries use ``format('%I.%I', ...)`` instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection, func, inspect, select, text
from sqlalchemy.exc import DBAPIError

from shared_db.engine import connect_to
from shared_db.errors_db import first_line, translate_error
from shared_db.models import Base
from shared_db.ops.chains import tables_of
from shared_db.ops.targets import Target
from shared_db.redact import redact_sql

TABLE_SIZES = text("""
SELECT tablename, pg_total_relation_size(format('%I.%I', schemaname, tablename)) AS bytes,
       pg_size_pretty(pg_total_relation_size(format('%I.%I', schemaname, tablename))) AS size
FROM pg_tables WHERE schemaname = :schema
ORDER BY bytes DESC, tablename
""")
INDEX_USAGE = text("""
SELECT s.relname, s.indexrelname, s.idx_scan, s.idx_tup_read, s.idx_tup_fetch,
       pg_relation_size(s.indexrelid), i.indisunique OR i.indisprimary
FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid
WHERE s.schemaname = :schema
ORDER BY s.idx_scan DESC, s.indexrelname
""")
INDEX_DEFINITIONS = text("""
SELECT c.relname, ci.relname, string_to_array(i.indkey::text, ' '), i.indclass::text,
       i.indisunique OR i.indisprimary, pg_get_expr(i.indexprs, i.indrelid),
       pg_get_expr(i.indpred, i.indrelid)
FROM pg_index i
JOIN pg_class ci ON ci.oid = i.indexrelid
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = :schema
ORDER BY c.relname, ci.relname
""")
STATEMENTS_INSTALLED = text("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'")
STATEMENTS_PRELOADED = text(
    "SELECT 'pg_stat_statements' = ANY(string_to_array("
    "replace(current_setting('shared_preload_libraries'), ' ', ''), ','))")
CREATE_STATEMENTS = text("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
TOP_STATEMENTS = text("""
SELECT query, calls, total_exec_time, mean_exec_time, rows
FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY total_exec_time DESC
LIMIT :top
""")

# The comment every statement of the package ends with (shared_db.sql.attribution). Matched by
# the name it captures, not by LIKE '%/* shared_db:%': a comment any client sends that only starts
# like ours (/* shared_db:x*/) matches that and names no method.
TOP_METHODS = text(r"""
SELECT substring(query FROM '/\* shared_db:(\S+) \*/') AS method, sum(calls)::bigint,
       sum(total_exec_time), sum(total_exec_time) / nullif(sum(calls), 0), sum(rows)::bigint
FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND substring(query FROM '/\* shared_db:(\S+) \*/') IS NOT NULL
GROUP BY 1
ORDER BY 3 DESC
LIMIT :top
""")


@dataclass(frozen=True)
class TableSize:
    table: str
    bytes: int
    size: str


@dataclass(frozen=True)
class IndexUsage:
    table: str
    index: str
    scans: int
    tuples_read: int
    tuples_fetched: int
    bytes: int
    unique: bool


@dataclass(frozen=True)
class RedundantIndex:
    """An index another one makes unnecessary: identical columns, or a leading prefix."""

    table: str
    index: str
    covered_by: str
    reason: str


@dataclass(frozen=True)
class StatementStats:
    query: str
    calls: int
    total_ms: float
    mean_ms: float
    rows: int


@dataclass(frozen=True)
class MethodStats:
    """The statements one query of the package sent, summed over its forms."""

    method: str
    calls: int
    total_ms: float
    mean_ms: float
    rows: int


@dataclass
class Stats:
    target: str
    database: str
    tables: list[TableSize] = field(default_factory=list)
    indexes: list[IndexUsage] = field(default_factory=list)
    unused_indexes: list[str] = field(default_factory=list)
    duplicate_indexes: list[RedundantIndex] = field(default_factory=list)
    top_statements: list[StatementStats] = field(default_factory=list)
    top_methods: list[MethodStats] = field(default_factory=list)
    """By the query name in each statement's trailing comment (``/* shared_db:users.get */``)."""
    statements_note: str | None = None


def redundant_indexes(rows: list[tuple[str, str, list[str], str, bool, str | None, str | None]],
                      ) -> list[RedundantIndex]:
    """Indexes whose work another index of the same table already does."""
    found: list[RedundantIndex] = []
    for table, name, keys, opclasses, unique, exprs, pred in rows:
        for other, other_keys, other_classes, other_unique, other_exprs, other_pred in (
                (r[1], r[2], r[3], r[4], r[5], r[6]) for r in rows
                if r[0] == table and r[1] != name):
            if exprs or other_exprs or pred != other_pred or unique:
                continue
            same = keys == other_keys and opclasses == other_classes
            prefix = len(keys) < len(other_keys) and other_keys[:len(keys)] == keys
            if same and (other_unique or name > other):
                found.append(RedundantIndex(table, name, other, "same columns"))
                break
            if prefix:
                found.append(RedundantIndex(table, name, other, "leading columns of"))
                break
    return found


def _statements(conn: Connection, top: int,
                install: bool) -> tuple[list[StatementStats], str | None]:
    if conn.execute(STATEMENTS_INSTALLED).first() is None:
        try:
            with conn.begin_nested():
                preloaded = conn.execute(STATEMENTS_PRELOADED).scalar()
        except DBAPIError as exc:  # reading the setting takes pg_read_all_settings
            return [], f"cannot tell whether pg_stat_statements is preloaded: {first_line(exc)}"
        if not preloaded:
            return [], ("pg_stat_statements is not in shared_preload_libraries on this server; "
                        "add it there and restart to see the top statements")
        if not install:
            return [], ("pg_stat_statements is preloaded but not installed in this database; "
                        "`shared-db stats` installs it")
        try:
            with conn.begin_nested():
                conn.execute(CREATE_STATEMENTS)
        except DBAPIError as exc:
            return [], f"pg_stat_statements could not be installed: {first_line(exc)}"
    rows = conn.execute(TOP_STATEMENTS, {"top": top}).all()
    # Utility statements are kept as sent, a role's password included (redact_sql).
    return [StatementStats(redact_sql(" ".join(q.split())), c, t, m, r)
            for q, c, t, m, r in rows], None


def collect(target: Target, top: int = 10, *, install: bool = True) -> Stats:
    """Every report for ``target``'s database; ``install``: create the pg_stat_statements
    extension when the server preloads it and the database lacks it.

    Raises:
        SharedDbError: a report the role may not read (``InsufficientPrivilege: permission
            denied for schema public``), or another database error, translated.
    """
    try:
        return _collect(target, top, install)
    except DBAPIError as exc:
        raise translate_error(exc.orig or exc) from None


def _collect(target: Target, top: int, install: bool) -> Stats:
    schema = target.connection.schema or "public"
    stats = Stats(target.name, target.connection.safe_url())
    with connect_to(target.connection) as conn, conn.begin():
        stats.tables = [TableSize(*r) for r in conn.execute(TABLE_SIZES, {"schema": schema})]
        stats.indexes = [IndexUsage(*r) for r in conn.execute(INDEX_USAGE, {"schema": schema})]
        stats.unused_indexes = [i.index for i in stats.indexes if i.scans == 0 and not i.unique]
        definitions = [tuple(r) for r in conn.execute(INDEX_DEFINITIONS, {"schema": schema})]
        stats.duplicate_indexes = redundant_indexes(definitions)
        stats.top_statements, stats.statements_note = _statements(conn, top, install)
        if stats.statements_note is None:
            stats.top_methods = [MethodStats(m, c, t, a or 0.0, r)
                                 for m, c, t, a, r in conn.execute(TOP_METHODS, {"top": top})]
    return stats


def row_counts(target: Target) -> dict[str, int]:
    """Rows per table of ``target``'s chains, for tables that exist there."""
    counts: dict[str, int] = {}
    with connect_to(target.connection) as conn:
        present = set(inspect(conn).get_table_names(schema=target.connection.schema))
        for chain in target.chains:
            for name in tables_of(chain):
                if name in present:
                    table = Base.metadata.tables[name]
                    query = select(func.count()).select_from(table)
                    counts[name] = conn.execute(query).scalar_one()
    return counts
