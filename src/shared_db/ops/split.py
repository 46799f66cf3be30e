"""``shared-db split``: copy the shared database into one database per service.

The source (``DATABASE_URL``) is only ever read: its session is opened read-only
(``default_transaction_read_only``) and every read happens in one ``REPEATABLE READ`` snapshot, so
the copy and its verification see the same rows. Each target (``<SERVICE>_DATABASE_URL``) is
migrated with its own chain, then filled table by table in primary-key batches; every batch is
one transaction on the target (rows staged with COPY, inserted with ``ON CONFLICT DO NOTHING``),
so an interrupted split leaves whole batches behind and a re-run skips what is there. Last,
every table's row count and checksum (a sum of per-row md5s, independent of order) are compared
between source and target; any difference fails the split.

Stop writers (or make the source read-only) while splitting: rows written after the snapshot
are not copied, and verification of a re-run reports them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from shared_db.config import Settings
from shared_db.connect import connect_direct
from shared_db.errors import ConfigError, MigrationError
from shared_db.models import Base  # every table registered: the plan reads them all
from shared_db.ops import migrate
from shared_db.ops.chains import is_cross_service, tables_of
from shared_db.ops.checksums import table_checksum
from shared_db.ops.targets import Target
from shared_db.services import SERVICES
from shared_db.url import ConnectionSettings
from shared_db.validation import shown

Progress = Callable[[str, str, int, int], None]
"""Called after each batch: service, table, rows done, rows in the source."""

@dataclass(frozen=True)
class Reference:
    """A foreign key between services that becomes a checked reference per service."""

    table: str
    column: str
    referred: str
    on_delete: str


@dataclass
class TablePlan:
    service: str
    table: str
    key: str
    rows: int
    copied: int = 0
    verified: bool = False


@dataclass
class SplitReport:
    tables: list[TablePlan] = field(default_factory=list)
    references: list[Reference] = field(default_factory=list)
    targets: dict[str, str] = field(default_factory=dict)


def cross_service_references() -> list[Reference]:
    found = []
    for table in Base.metadata.sorted_tables:
        for fk in table.foreign_key_constraints:
            if is_cross_service(fk):
                found.append(Reference(table.name, fk.column_keys[0], fk.referred_table.name,
                                       str(fk.ondelete or "NO ACTION")))
    return found


def _connections(settings: Settings) -> tuple[ConnectionSettings, dict[str, ConnectionSettings]]:
    if not settings.database_url:
        raise ConfigError("DATABASE_URL", "is required for split: the shared database to copy")
    source = settings.connection()
    targets: dict[str, ConnectionSettings] = {}
    for service in SERVICES:
        name = f"{service.upper()}_DATABASE_URL"
        if service not in settings.service_urls:
            raise ConfigError(name, "is required for split: where the service's tables go")
        targets[service] = settings.connection(settings.service_urls[service], name)
    # Compared as the servers answer, not as written: localhost and 127.0.0.1, a missing
    # default port or another application_name name the same database.
    seen = {_identity(source): "DATABASE_URL (the source)"}
    for service, conn in targets.items():
        name = f"{service.upper()}_DATABASE_URL"
        first = seen.setdefault(_identity(conn), name)
        if first != name:
            raise ConfigError(name, f"names the same database as {first}; the four targets "
                              "must be four databases other than the source")
    return source, targets


def _identity(conn: ConnectionSettings) -> tuple[object, ...]:
    """What tells one database of one server from every other, to any login role: the
    server's start time and port, the database's oid, and the schema the URL works in."""
    with connect_direct(conn) as live:
        row = live.execute("SELECT pg_postmaster_start_time(), current_setting('port'), oid "
                           "FROM pg_database WHERE datname = current_database()").fetchone()
    return (*(row or ()), conn.schema or "public")


@contextmanager
def _snapshot(source: ConnectionSettings) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with connect_direct(source, options="-c default_transaction_read_only=on") as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield conn


def plan(settings: Settings) -> SplitReport:
    """What ``split`` would do: tables and row counts per service, and the references."""
    return _plan(*_connections(settings))


def _plan(source: ConnectionSettings, targets: dict[str, ConnectionSettings]) -> SplitReport:
    report = SplitReport(references=cross_service_references(),
                         targets={s: c.safe_url() for s, c in targets.items()})
    with _snapshot(source) as conn:
        for service in SERVICES:
            for name in tables_of(service):
                table = Base.metadata.tables[name]
                count = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
                    sql.Identifier(name))).fetchone()
                report.tables.append(TablePlan(service, name, table.primary_key.columns[0].name,
                                               int(str(count[0])) if count else 0))
    return report


def split(settings: Settings, *, batch_size: int = 5000,
          progress: Progress | None = None) -> SplitReport:
    """Migrate the four targets, copy every row, verify; safe to run again after a stop.

    Raises:
        ConfigError: a URL is missing or the targets are not four other databases.
        MigrationError: a table's count or checksum differs between source and target.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError("batch_size", f"must be a whole number >= 1, got {shown(batch_size)}")
    source, targets = _connections(settings)
    report = _plan(source, targets)
    for service, conn in targets.items():
        migrate.deploy(Target(service, conn, (service,)), settings.migrations_dir)
    with _snapshot(source) as src:
        for item in report.tables:
            with connect_direct(targets[item.service]) as dst:
                _copy_table(src, dst, item, batch_size, progress)
                _verify(src, dst, item)
    return report


def _copy_table(src: psycopg.Connection[tuple[object, ...]],
                dst: psycopg.Connection[tuple[object, ...]], item: TablePlan,
                batch_size: int, progress: Progress | None) -> None:
    table, key = sql.Identifier(item.table), sql.Identifier(item.key)
    columns = sql.SQL(", ").join(sql.Identifier(c.name)
                                 for c in Base.metadata.tables[item.table].columns)
    last: object = None
    while True:
        after = sql.SQL("TRUE") if last is None else sql.SQL("{} > {}").format(
            key, sql.Literal(last))
        bound = src.execute(sql.SQL("SELECT k FROM (SELECT {key} AS k FROM {t} WHERE {after} "
                                    "ORDER BY {key} LIMIT {n}) batch ORDER BY k DESC LIMIT 1"
                                    ).format(
            key=key, t=table, after=after, n=sql.Literal(batch_size))).fetchone()
        if bound is None or bound[0] is None:
            return
        rows = sql.SQL("SELECT {cols} FROM {t} WHERE {after} AND {key} <= {upto}").format(
            cols=columns, t=table, after=after, key=key, upto=sql.Literal(bound[0]))
        with dst.transaction():
            dst.execute(sql.SQL("CREATE TEMP TABLE split_stage (LIKE {}) ON COMMIT DROP").format(
                table))
            with (src.cursor().copy(sql.SQL("COPY ({}) TO STDOUT").format(rows)) as out,
                  dst.cursor().copy(sql.SQL("COPY split_stage ({}) FROM STDIN").format(
                      columns)) as into):
                for data in out:
                    into.write(data)
            batch = dst.execute(sql.SQL(
                "INSERT INTO {t} ({cols}) SELECT {cols} FROM split_stage "
                "ON CONFLICT DO NOTHING").format(t=table, cols=columns))
            moved = dst.execute("SELECT count(*) FROM split_stage").fetchone()
        item.copied += int(str(moved[0])) if moved else batch.rowcount
        last = bound[0]
        if progress:
            progress(item.service, item.table, item.copied, item.rows)


def _verify(src: psycopg.Connection[tuple[object, ...]],
            dst: psycopg.Connection[tuple[object, ...]], item: TablePlan) -> None:
    table = sql.Identifier(item.table)
    source, target = table_checksum(src, table), table_checksum(dst, table)
    dst.rollback()
    if source != target:
        raise MigrationError(
            f"split: {item.service}.{item.table} differs after copying: source has "
            f"{source[0]} rows, target {target[0]} (or their checksums differ); was the "
            "source written to, or the target changed by hand?")
    item.verified = True
