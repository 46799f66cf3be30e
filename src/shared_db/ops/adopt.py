"""``migrate adopt``: convert a database Prisma Migrate made from the guide's schema, in place and
in one transaction, into exactly the schema shared-db's migrations build, stamped at head.

The migrations are first built in a scratch database beside it; the conversion (``adopt_plan``) is
computed from the two catalogs. Then, under the migration lock and in one transaction: the database
is recognised again (two adopts cannot both convert it), every id to convert is checked to be a uuid
and no two ids of a key nor two emails to differ only in case (they would be one value once
converted and lower-cased), the data is summed, the statements run, the data is summed again, the
version tables are stamped, and the catalog is compared with the scratch database's
(``ops.catalog``, as ``migrate baseline`` does). Any difference rolls everything back. Prisma's
history table is dropped in the same transaction: shared-db's version tables take its place, and a
table the migrations do not make would be drift for every later command.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import psycopg
from alembic import command
from psycopg import sql
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from shared_db.connect import connect_direct
from shared_db.engine import connect_to
from shared_db.errors import (
    AdoptionFailedError,
    AdoptionMismatchError,
    AdoptionRefusedError,
    LockTimeoutError,
    MigrationError,
)
from shared_db.errors_db import first_line
from shared_db.ops import migrate
from shared_db.ops.adopt_checks import (
    TableCheck,
    compare,
    data_sums,
    not_uuids,
    prisma_history,
    same_lowered,
)
from shared_db.ops.adopt_columns import Plan, Statement
from shared_db.ops.adopt_plan import Shape, plan_adoption, read_shape
from shared_db.ops.catalog import differences, schema_in_transaction
from shared_db.ops.history import Step, alembic_config, chain_steps
from shared_db.ops.locks import LockPolicy, driver_error, set_lock_timeout, with_retries
from shared_db.ops.scratch import scratch_database
from shared_db.ops.targets import Target
from shared_db.ops.versions import CHAINS


@dataclass
class Adoption:
    """What adopt did (or, with ``dry_run``, would do) to one database."""

    target: str
    database: str
    dry_run: bool
    prisma_migrations: list[str] = field(default_factory=list)
    statements: list[str] = field(default_factory=list)
    conversions: dict[str, str] = field(default_factory=dict)
    """``table.column`` -> the type its values were converted to."""
    lowered: list[str] = field(default_factory=list)
    """``table.column`` whose values were lower-cased (the emails)."""
    checks: list[TableCheck] = field(default_factory=list)
    stamped: list[Step] = field(default_factory=list)


@dataclass(frozen=True)
class _Wanted:
    shape: Shape
    schema: dict[tuple[str, str], str]


def _driver(conn: Connection) -> psycopg.Connection[Any]:
    driver = conn.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    return driver


def _built(target: Target, migrations_dir: Path) -> _Wanted:
    try:
        with scratch_database(target.connection, "adopt") as scratch:
            if scratch.schema:
                # The URL's schema= is where the migrations build, there as in the database.
                with connect_direct(scratch, autocommit=True) as admin:
                    admin.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                        sql.Identifier(scratch.schema)))
            migrate.deploy(Target("scratch", scratch, target.chains), migrations_dir,
                           run=migrate.StepRun(check_rows=False))
            with connect_to(scratch) as conn:
                found = _Wanted(read_shape(_driver(conn)), schema_in_transaction(conn))
                conn.rollback()
                return found
    except psycopg.Error as exc:
        raise MigrationError(f"{target.name}: adopt builds the migrations in a scratch database "
                             f"beside it and could not: {first_line(exc)} (the role needs "
                             "CREATEDB); nothing was changed") from exc
    except MigrationError as exc:
        # deploy's message speaks of "the database": here only the scratch one was touched.
        cause = driver_error(exc)
        raise MigrationError(f"{target.name}: adopt builds the migrations in a scratch database "
                             "beside it, and building them failed there: "
                             f"{first_line(cause) if cause else exc}; nothing was changed in "
                             f"{target.name}") from exc


def _refuse(message: str, problems: list[str],
            kind: type[AdoptionRefusedError] = AdoptionRefusedError) -> NoReturn:
    raise kind(message, problems)


def _run(driver: psycopg.Connection[Any], statement: Statement) -> None:
    try:
        driver.execute(statement)
    except psycopg.Error as exc:
        # As SQLAlchemy's error, so that a lock timeout is retried like a migration step's.
        raise DBAPIError.instance(statement.as_string(driver), None, exc, psycopg.Error) from exc


def _prepare(conn: Connection, result: Adoption, wanted: _Wanted) -> tuple[Plan, Shape]:
    driver = _driver(conn)
    result.prisma_migrations = prisma_history(driver, result.target)
    have = read_shape(driver)
    plan = plan_adoption(have, wanted.shape)
    result.statements = [s.as_string(driver) for s in plan.statements]
    result.conversions = {f"{t}.{c}": kind for (t, c), kind in plan.conversions.items()}
    result.lowered = [f"{t}.{c}" for t, c in plan.lowered]
    if plan.refusals:
        _refuse(f"{result.target}: the schema is not the guide's as Prisma makes it; "
                "nothing was changed", plan.refusals)
    return plan, have


def _check_ids(conn: Connection, result: Adoption, plan: Plan, have: Shape) -> None:
    bad = not_uuids(_driver(conn), plan, have)
    if bad:
        _refuse(f"{result.target}: ids that are not uuids cannot become uuid; nothing "
                "was changed", bad)
    same = same_lowered(_driver(conn), plan, have)
    if same:
        _refuse(f"{result.target}: values that differ only in case would be one value once "
                "converted (uuids and emails are lower-case); nothing was changed", same)


def _convert(conn: Connection, result: Adoption, wanted: _Wanted, migrations_dir: Path,
             chains: tuple[str, ...]) -> None:
    driver = _driver(conn)
    plan, have = _prepare(conn, result, wanted)
    lock, *rest = plan.statements
    # Locked before anything is read: no write can come between the two sums.
    _run(driver, lock)
    _check_ids(conn, result, plan, have)
    before = data_sums(driver, plan, have, converted=False)
    for statement in rest:
        _run(driver, statement)
    result.checks, problems = compare(before, data_sums(driver, plan, have, converted=True))
    for chain in chains:
        steps = chain_steps(migrations_dir, chain)
        if steps:
            command.stamp(alembic_config(migrations_dir, chain, conn), steps[-1].revision)
            result.stamped.append(steps[-1])
    problems += differences(schema_in_transaction(conn), wanted.schema)
    if problems:
        result.stamped = []
        _refuse(f"{result.target}: after the conversion the data or the schema differs "
                "from what it must be; everything was rolled back, nothing was changed",
                problems, AdoptionMismatchError)


def _one_target(targets: list[Target]) -> Target:
    if len(targets) != 1 or targets[0].chains != CHAINS:
        raise AdoptionRefusedError(
            "migrate adopt converts the guide's shared Prisma database (one DATABASE_URL, "
            "every table); unset SHARED_DB_TOPOLOGY and the per-service URLs, adopt it, then "
            "move to per-service databases with `shared-db split`")
    return targets[0]


@contextmanager
def _read_only(target: Target) -> Iterator[Connection]:
    with connect_to(target.connection) as conn:
        try:
            yield conn
        finally:
            conn.rollback()


def adopt(targets: list[Target], migrations_dir: Path, dry_run: bool = False,
          policy: LockPolicy | None = None) -> Adoption:
    """Convert the Prisma-made database of ``targets`` into shared-db's schema, or (``dry_run``)
    say how, running the checks that read and changing nothing.

    Raises:
        AdoptionRefusedError: not a Prisma-made database of the guide's schema, already adopted,
            per-service targets, a non-uuid id, or ids or emails differing only in case;
            nothing was changed.
        AdoptionFailedError: a statement of the conversion failed; all was rolled back.
        AdoptionMismatchError: the converted data or schema differed; all was rolled back.
        MigrationError: the migrations could not be built in a scratch database; nothing
            was changed.
        LockTimeoutError: the tables could not be locked within lock_timeout in any try.
    """
    target = _one_target(targets)
    result = Adoption(target.name, target.connection.safe_url(), dry_run)
    with _read_only(target) as conn:
        prisma_history(_driver(conn), target.name)  # refuse before building anything
    wanted = _built(target, migrations_dir)
    if dry_run:
        with _read_only(target) as conn:
            plan, have = _prepare(conn, result, wanted)
            _check_ids(conn, result, plan, have)
            sums = data_sums(_driver(conn), plan, have, converted=False)
            result.checks = [TableCheck(t, rows, sum_) for t, (rows, sum_) in sums.items()]
        return result
    lock_policy = policy or LockPolicy()
    with migrate.migration_lock(target) as conn:

        def attempt() -> None:
            result.stamped, result.checks = [], []
            with conn.begin():
                set_lock_timeout(conn, lock_policy, local=True)
                _convert(conn, result, wanted, migrations_dir, target.chains)

        try:
            with_retries(attempt, lock_policy, f"adopt {target.name}")
        except LockTimeoutError as exc:
            raise LockTimeoutError(
                f"{target.name}: adopt could not lock the tables: a lock was not granted within "
                f"lock_timeout {lock_policy.timeout:g} s in any of {lock_policy.retries + 1} "
                "tries (another transaction holds a table; SHARED_DB_LOCK_TIMEOUT, "
                "SHARED_DB_LOCK_RETRIES); nothing was changed") from exc
        except DBAPIError as exc:
            raise AdoptionFailedError(f"{target.name}: adopt failed and was rolled back, "
                                      f"nothing was changed: {first_line(exc)}") from exc
    return result
