"""Apply and roll back migrations: ``deploy``, ``down``, ``drop_all``; one database at a time.

Every command holds a PostgreSQL advisory lock for its whole run, so two deploys started at the
same moment apply each migration once: the second waits, then finds nothing pending. Each
migration runs in its own transaction (PostgreSQL DDL is transactional), so a failing migration
leaves the database at the previous one, never half-way. Each step runs under ``lock_timeout``
and is tried again after a pause when a lock was not granted (``ops.locks``); a step the safety
lint flags on a table holding rows is refused unless its file acknowledges the rule
(``ops.lint``); a migration with a transaction statement of its own (``COMMIT``, ``SAVEPOINT``)
is refused before any step runs, since it would defeat the transaction that undoes it. A step
with an ``autocommit_block`` (``CREATE INDEX CONCURRENTLY``) runs outside a transaction, after
dropping any invalid index a killed run of it left (``ops.concurrent``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from alembic import command
from psycopg import sql
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.schema import CreateSchema, DropSchema

from shared_db.engine import connect_to
from shared_db.errors import MigrationError
from shared_db.errors_db import first_line
from shared_db.ops.concurrent import drop_invalid
from shared_db.ops.history import Step, alembic_config, all_steps, applied_steps, find_step
from shared_db.ops.lint import StepLint, lint_down, lint_steps, refuse_errors, refuse_unsafe
from shared_db.ops.loading import describe, migration_code
from shared_db.ops.locks import (
    LockPolicy,
    driver_error,
    session_lock_timeout,
    set_lock_timeout,
    with_retries,
)
from shared_db.ops.targets import Target, require_direct

SCHEMA_OWNER = text("SELECT r.rolname FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner "
                    "WHERE n.nspname = :s")
CHECK_CLIENT = text("SELECT set_config('client_connection_check_interval', '1000', false)")
MIGRATION_LOCK = 0x53484442  # "SHDB": one key for every migration command on a database
TRY_LOCK = text("SELECT pg_try_advisory_lock(:key)")
LOCK_POLL = 0.2
Progress = Callable[[Step], None]
Notice = Callable[[str], None]


@dataclass
class Applied:
    """What a command changed on one target."""

    target: str
    steps: list[Step] = field(default_factory=list)


@contextmanager
def migration_lock(target: Target) -> Iterator[Connection]:
    """A connection to ``target`` holding the migration lock until the block ends.

    Raises:
        ConfigError: ``target`` is reached through PgBouncer.
    """
    require_direct(target, "a migration command", "it holds a session lock (and session "
                   "settings) from its first transaction to its last")
    with connect_to(target.connection) as conn:
        if (conn.dialect.server_version_info or (0,)) >= (14,):
            # If this process dies mid-migration, the server notices within a second even
            # during a long statement, rolls the migration back and frees the lock.
            conn.execute(CHECK_CLIENT)
        # Polled, not waited for in pg_advisory_lock: a session waiting inside a statement
        # holds a snapshot, and CREATE INDEX CONCURRENTLY in the lock holder's session waits
        # for every older snapshot to end, which would deadlock the two.
        try:
            while not conn.execute(TRY_LOCK, {"key": MIGRATION_LOCK}).scalar():
                conn.commit()
                time.sleep(LOCK_POLL)
            conn.commit()
        except DBAPIError as exc:
            raise MigrationError(f"{target.name}: could not take the migration lock: "
                                 f"{first_line(exc)}") from exc
        try:
            yield conn
        finally:
            # A lost connection already released the lock with its session; do not let the
            # failed clean-up hide the error that ended the block.
            with contextlib.suppress(SQLAlchemyError):
                conn.rollback()
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
                conn.commit()


@dataclass(frozen=True)
class StepRun:
    """How to run steps: the lock policy, whether to refuse flagged steps, where to say so."""

    policy: LockPolicy = field(default_factory=LockPolicy)
    check_rows: bool = True
    notice: Notice | None = None


def _run_step(conn: Connection, migrations_dir: Path, step: Step, up: bool, lint: StepLint,
              run: StepRun) -> None:
    cfg = alembic_config(migrations_dir, step.chain, conn)

    def migrate() -> None:
        if up:
            if run.check_rows:
                refuse_unsafe(conn, lint)
                if lint.non_transactional:
                    conn.commit()  # Alembic must find no transaction to commit for the block
            command.upgrade(cfg, step.revision)
        else:
            command.downgrade(cfg, step.down_revision or "base")

    def attempt() -> None:
        if conn.in_transaction():
            conn.commit()
        if lint.non_transactional:
            for index in drop_invalid(conn, lint.concurrent_indexes):
                _say(run, f"  dropped invalid index {index} left by an interrupted build")
            with session_lock_timeout(conn, run.policy):
                migrate()
            return
        with conn.begin():
            set_lock_timeout(conn, run.policy, local=True)
            migrate()

    def waiting(tries: int, pause: float) -> None:
        _say(run, f"  {step.label}: lock not granted within {run.policy.timeout:g} s "
                  f"(try {tries}); trying again in {pause:g} s")

    verb = "apply" if up else "roll back"

    def failed(exc: BaseException) -> MigrationError:  # the server, or the file's own code
        found = driver_error(exc)
        reason = first_line(found) if found else describe(exc)
        # Only a transaction undoes everything; what an autocommit block ran stays.
        left = ("the version table was left at the migration before it; what it ran outside a "
                "transaction stays applied" if lint.non_transactional else
                "the database was left at the migration before it")
        return MigrationError(f"could not {verb} {step.label}: {reason} ({left})")

    with migration_code(migrations_dir, failed):
        with_retries(attempt, run.policy, f"{verb} {step.label}", waiting)


def _say(run: StepRun, text: str) -> None:
    if run.notice:
        run.notice(text)


def pending_steps(conn: Connection, migrations_dir: Path, target: Target) -> list[Step]:
    applied, unknown = applied_steps(conn, migrations_dir, target.chains)
    if unknown:
        raise MigrationError(f"{target.name}: the database is at {', '.join(unknown)}, which no "
                             "migration file defines; restore the file or `migrate down` with "
                             "the code that wrote it")
    done = set(applied)
    return [s for s in all_steps(migrations_dir, target.chains) if s not in done]


def deploy(target: Target, migrations_dir: Path, progress: Progress | None = None,
           limit: int | None = None, run: StepRun | None = None) -> Applied:
    """Apply pending migrations of ``target``'s chains in global order (all, or ``limit``).

    Raises:
        UnsafeMigrationError: a step holds a statement the lint always refuses (transaction
            control; nothing is applied), or is flagged on a table with rows and not
            acknowledged.
        LockTimeoutError: a step's locks were not granted in any of its tries.
        MigrationError: a step failed; the steps before it stay applied.
    """
    result = Applied(target.name)
    with migration_lock(target) as conn:
        steps = pending_steps(conn, migrations_dir, target)[:limit]
        lints = {lint.step: lint for lint in lint_steps(migrations_dir, target.chains,
                                                        only=set(steps))} if steps else {}
        # Refused whatever the database holds: before any step, so none is applied.
        for step in steps:
            refuse_errors(lints[step])
        for step in steps:
            _run_step(conn, migrations_dir, step, True, lints[step], run or StepRun())
            result.steps.append(step)
            if progress:
                progress(step)
    return result


def steps_to_undo(applied: list[Step], to: str | None) -> list[Step]:
    """Applied steps to roll back, newest first: the last one, or all after ``to``.

    Raises:
        MigrationError: nothing is applied, or ``to`` names no applied migration.
    """
    if not applied:
        raise MigrationError("nothing to roll back: no migration is applied")
    if to is None:
        return [applied[-1]]
    if to == "base":
        return list(reversed(applied))
    try:
        keep = find_step(applied, to)
    except MigrationError as exc:
        raise MigrationError(f"--to: {exc}") from None
    return list(reversed(applied[applied.index(keep) + 1:]))


def down(targets: list[Target], migrations_dir: Path, to: str | None = None,
         progress: Progress | None = None, run: StepRun | None = None) -> list[Applied]:
    """Roll back the newest migration across ``targets`` (or every one after ``to``)."""
    by_name = {t.name: t for t in targets}
    plan: list[tuple[Step, str]] = []
    for target in targets:
        with migration_lock(target) as conn:
            applied, unknown = applied_steps(conn, migrations_dir, target.chains)
        if unknown:  # the newest migration may be that one: rolling back another is no undo
            raise MigrationError(f"{target.name}: the database is at {', '.join(unknown)}, "
                                 "which no migration file defines; roll it back with the code "
                                 "that wrote it (nothing was rolled back)")
        plan += [(s, target.name) for s in applied]
    plan.sort(key=lambda item: item[0].order)
    undo = steps_to_undo([s for s, _ in plan], to)
    owner = {s: name for s, name in plan}
    results: dict[str, Applied] = {}
    for step in undo:
        target = by_name[owner[step]]
        with migration_lock(target) as conn:
            _run_step(conn, migrations_dir, step, False, lint_down(migrations_dir, step),
                      run or StepRun())
        results.setdefault(target.name, Applied(target.name)).steps.append(step)
        if progress:
            progress(step)
    return list(results.values())


def drop_all(target: Target) -> None:
    """Drop every object in ``target``'s schema (tables, views, types, version tables)."""
    schema = target.connection.schema or "public"
    with migration_lock(target) as conn, conn.begin():
        owner = conn.execute(SCHEMA_OWNER, {"s": schema}).scalar()
        conn.execute(DropSchema(schema, cascade=True, if_exists=True))
        conn.execute(CreateSchema(schema))
        driver = conn.connection.driver_connection
        assert driver is not None
        if owner:
            driver.execute(sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(
                sql.Identifier(schema), sql.Identifier(owner)))
        if schema == "public":
            conn.execute(text("GRANT USAGE ON SCHEMA public TO PUBLIC"))
