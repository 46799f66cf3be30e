"""``shared-db doctor`` (guide 12): what is wrong, and how to fix it.

Each check ends ``ok``, ``warn``, ``fail`` or ``unknown`` with a detail and, when not ok, the fix.
The known problems of the guide's troubleshooting section are recognised by their symptoms: models
without tables (Prisma's "client not found"), migration conflicts, and connections refused, timed
out or failing authentication. It runs as any login role: what the role may not read is
``unknown``, with the grant that would show it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from psycopg import sql
from psycopg.errors import InsufficientPrivilege
from sqlalchemy import inspect, text
from sqlalchemy.exc import ProgrammingError

from shared_db.config import Settings
from shared_db.connect import connect_timeout
from shared_db.engine import connect_to
from shared_db.errors import DatabaseUnavailableError, SharedDbError
from shared_db.errors_db import first_line
from shared_db.ops.chains import tables_of, version_table
from shared_db.ops.doctor_connection import grant, set_search_path, why_unreachable
from shared_db.ops.doctor_hosts import host_findings
from shared_db.ops.history import all_steps
from shared_db.ops.status import status
from shared_db.ops.targets import Target

Status = Literal["ok", "warn", "fail", "unknown"]
MIN_SERVER = 130000  # gen_random_uuid() is built in from PostgreSQL 13

SERVER = text("SELECT current_setting('server_version_num')::int, version(), "
              "current_setting('max_connections')::int, current_user, "
              "current_setting('search_path')")
EXTENSIONS = text("SELECT name, installed_version IS NOT NULL FROM pg_available_extensions "
                  "WHERE name IN ('pg_stat_statements', 'pgcrypto') ORDER BY name")
# pg_settings leaves out what the role may not read (current_setting() would raise instead).
PRELOADED = text("SELECT setting FROM pg_settings WHERE name = 'shared_preload_libraries'")
READABLE = text("SELECT t FROM unnest(CAST(:tables AS text[])) AS t "
                "WHERE to_regclass(t) IS NOT NULL AND NOT has_table_privilege(t, 'SELECT')")
IN_DOUBT_AFTER = 60.0
"""Seconds after which a prepared part counts as left behind (a live commit takes far less)."""
IN_RECOVERY = text("SELECT pg_is_in_recovery()")
TWO_PHASE = text("SELECT current_setting('max_prepared_transactions')::int, "
                 "(SELECT count(*) FROM pg_prepared_xacts WHERE database = current_database() "
                 "AND gid LIKE 'shared-db:%' AND prepared < now() - make_interval(secs => :age))")


@dataclass(frozen=True)
class Check:
    target: str
    name: str
    status: Status
    detail: str
    fix: str | None = None


def _pool(target: Target) -> Check:
    conn = target.connection
    detail = (f"{conn.safe_url()}: pool size {conn.pool_size}, pool_timeout "
              f"{conn.pool_timeout:g}s, connect_timeout {connect_timeout(conn)}s"
              f", prepared statements {'off (pgbouncer)' if conn.pgbouncer else 'on'}"
              f", search_path {conn.schema or 'default'}")
    return Check(target.name, "pool settings", "ok", detail)


def _server(target: Target) -> list[Check]:
    checks = []
    with connect_to(target.connection) as conn:
        number, version, max_connections, role, path = conn.execute(SERVER).one()
        extensions = {name: installed for name, installed in conn.execute(EXTENSIONS)}
        preloaded = conn.execute(PRELOADED).scalar()
        max_prepared, in_doubt = conn.execute(TWO_PHASE, {"age": IN_DOUBT_AFTER}).one()
        present = set(inspect(conn).get_table_names(schema=target.connection.schema))
    checks.append(Check(target.name, "server", "ok" if number >= MIN_SERVER else "fail",
                        version.split(",")[0],
                        None if number >= MIN_SERVER else "use PostgreSQL 13 or newer"))
    wanted_schema = target.connection.schema
    first = str(path).split(",")[0].strip().strip('"')
    if wanted_schema is not None and first != wanted_schema:
        checks.append(Check(target.name, "schema", "fail",
                            f"the URL's schema is {wanted_schema}, and the connection's "
                            f"search_path is {path}: the options startup parameter that sets "
                            "it was dropped on the way (PgBouncer's ignore_startup_parameters)",
                            f"set it on the server connections (PgBouncer's connect_query = "
                            f"'{set_search_path(wanted_schema)}' for that database, or the "
                            "same as the role's own setting)"))
    size = target.connection.pool_size
    if size > max_connections - 3:
        checks.append(Check(target.name, "connections", "warn",
                            f"pool size {size} is "
                            + ("more than" if size > max_connections else "close to")
                            + f" the server's max_connections {max_connections}",
                            "lower connection_limit or raise max_connections"))
    stat = "pg_stat_statements"
    if stat not in extensions:
        checks.append(Check(target.name, "extensions", "warn", f"{stat} is not available",
                            "install the PostgreSQL contrib package for `shared-db stats`"))
    elif preloaded is None:
        checks.append(Check(target.name, "extensions", "unknown",
                            f"{stat} is available; whether shared_preload_libraries loads it "
                            f"is not visible to role {role}",
                            grant(sql.SQL("pg_read_all_settings"), role)))
    elif stat not in str(preloaded):
        checks.append(Check(target.name, "extensions", "warn",
                            f"{stat} is available but not in shared_preload_libraries",
                            f"add {stat} to shared_preload_libraries and restart"))
    else:
        checks.append(Check(target.name, "extensions", "ok",
                            "available: " + ", ".join(sorted(extensions))))
    checks.append(_two_phase(target, max_prepared, in_doubt))
    wanted = [t for chain in target.chains for t in tables_of(chain)]
    missing = [t for t in wanted if t not in present]
    checks.append(Check(target.name, "models", "fail" if missing else "ok",
                        f"tables missing for models: {', '.join(missing)}" if missing
                        else f"all {len(wanted)} model tables exist",
                        "run `shared-db migrate deploy`" if missing else None))
    return checks


def _two_phase(target: Target, max_prepared: int, in_doubt: int) -> Check:
    if in_doubt:
        return Check(target.name, "two-phase commit", "fail",
                     f"{in_doubt} transaction part(s) prepared over {IN_DOUBT_AFTER:g} s ago "
                     "and never finished (a process died at commit); they hold locks",
                     "run `shared-db db recover`")
    if target.name != "shared" and max_prepared == 0:
        return Check(target.name, "two-phase commit", "fail",
                     "max_prepared_transactions is 0: transactions spanning service "
                     "databases cannot commit", "set max_prepared_transactions (e.g. 64) "
                     "in postgresql.conf and restart the server")
    return Check(target.name, "two-phase commit", "ok",
                 f"max_prepared_transactions {max_prepared}, nothing in doubt")


def _unreadable_versions(target: Target) -> tuple[str, list[str]]:
    """The role, and the migration version tables it may not read."""
    tables = [version_table(chain) for chain in target.chains]
    with connect_to(target.connection) as conn:
        role = str(conn.execute(text("SELECT current_user")).scalar())
        return role, [str(t) for t in conn.execute(READABLE, {"tables": tables}).scalars()]


def _migrations(target: Target, migrations_dir: Path) -> Check:
    role, unreadable = _unreadable_versions(target)
    if unreadable:
        return Check(target.name, "migrations", "unknown",
                     f"role {role} may not read {', '.join(unreadable)}",
                     grant(sql.SQL("SELECT ON {}").format(
                         sql.SQL(", ").join(map(sql.Identifier, unreadable))), role))
    try:
        all_steps(migrations_dir, target.chains)
        result = status(target, migrations_dir)
    except SharedDbError as error:
        return Check(target.name, "migrations", "fail", str(error),
                     "resolve the conflict in the migration files, or on a development "
                     "database `shared-db migrate reset` (guide 12.1, migration conflicts)")
    if result.unknown:
        return Check(target.name, "migrations", "fail",
                     f"applied but missing from the files: {', '.join(result.unknown)}",
                     "restore the missing migration files (check out the code that wrote them)")
    if result.pending and result.drift:  # the database vs its applied migrations replayed
        return Check(target.name, "migrations", "fail",
                     f"{len(result.pending)} pending, and drift from the applied migrations: "
                     + "; ".join(result.drift),
                     "undo the hand change, then `shared-db migrate deploy`; or deploy, then "
                     "keep it with `shared-db migrate dev --from-drift --name N`")
    if result.pending:
        return Check(target.name, "migrations", "warn",
                     f"{len(result.pending)} pending: "
                     + ", ".join(s.label for s in result.pending),
                     "run `shared-db migrate deploy`")
    if result.drift:
        return Check(target.name, "migrations", "fail", "drift: " + "; ".join(result.drift),
                     "a hand change to the database: undo it, or keep it with `shared-db migrate "
                     "dev --from-drift --name N` and bring the models in line; a change to the "
                     "models: `shared-db migrate dev --name N`")
    return Check(target.name, "migrations", "ok", f"{len(result.applied)} applied, no drift")


def diagnose(settings: Settings, targets: list[Target]) -> list[Check]:
    """Every check for every target, in order; never raises for a problem it can describe."""
    checks: list[Check] = []
    for target in targets:
        checks.append(_pool(target))
        try:
            checks += _server(target)
        except DatabaseUnavailableError as error:
            detail, fix = why_unreachable(target.connection, error)
            checks.append(Check(target.name, "connection", "fail", detail, fix))
            # Each host on its own still answers: which are up, and as what (no primary).
            checks += [Check(target.name, *found) for found in host_findings(target)]
            continue
        except ProgrammingError as error:  # a right missing that no check above knows of
            checks.append(_not_permitted(target, "server", error))
        checks += [Check(target.name, *found) for found in host_findings(target)]
        try:
            checks.append(_migrations(target, settings.migrations_dir))
        except ProgrammingError as error:
            checks.append(_not_permitted(target, "migrations", error))
        checks += _replica(settings, target)
    return checks


def _replica(settings: Settings, target: Target) -> list[Check]:
    """The read replica of ``target``'s reads, when one is set: reachable, and a replica."""
    service = "auth" if target.name == "shared" else target.name  # shared: one for all
    raw = settings.read_urls.get(service)
    if raw is None:
        return []
    name = "DATABASE_READ_URL" if target.name == "shared" else f"{service.upper()}_READ_URL"
    replica = settings.connection(raw, name)
    try:
        with connect_to(replica) as conn:
            standby = bool(conn.execute(IN_RECOVERY).scalar())
    except DatabaseUnavailableError as error:
        detail, fix = why_unreachable(replica, error)
        return [Check(target.name, "read replica", "fail", f"{name}: {detail}", fix)]
    if not standby:
        return [Check(target.name, "read replica", "warn", f"{name} ({replica.safe_url()}) is "
                      "not in recovery: reads go to a primary",
                      "point it at a standby, or leave it unset to read from the primary")]
    return [Check(target.name, "read replica", "ok", f"{name}: {replica.safe_url()}, a standby")]


def _not_permitted(target: Target, name: str, error: ProgrammingError) -> Check:
    if not isinstance(error.orig, InsufficientPrivilege):
        raise error
    return Check(target.name, name, "unknown", f"not readable as {target.connection.url.username}"
                 f": {first_line(error)}", "grant the right named, or run doctor as the "
                 "database owner")
