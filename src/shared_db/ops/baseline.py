"""``migrate baseline``: adopt a database whose schema exists but has no migration history.

It is stamped at every chain's head only once its schema is proven equal to what the
migrations build: they are applied to a scratch database on the same server and the two
catalogs compared object by object (``ops.catalog``). Any difference refuses the baseline for
every target, listing the differences, and nothing is stamped anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from alembic import command

from shared_db.engine import connect_to
from shared_db.errors import MigrationError
from shared_db.errors_db import first_line
from shared_db.ops import migrate
from shared_db.ops.catalog import differences, read_schema
from shared_db.ops.history import Step, alembic_config, chain_steps, current_revision
from shared_db.ops.scratch import scratch_database
from shared_db.ops.targets import SCRATCH_HELD, Target, require_direct


@dataclass
class Baseline:
    """One target: the differences found, or the chain heads it was stamped at."""

    target: str
    database: str
    differences: list[str] = field(default_factory=list)
    stamped: list[Step] = field(default_factory=list)


def _history(target: Target, migrations_dir: Path) -> list[str]:
    with connect_to(target.connection) as conn:
        found = [f"{c}:{rev}" for c in target.chains
                 if (rev := current_revision(conn, c)) is not None]
        conn.rollback()
    return found


def _compare(target: Target, migrations_dir: Path) -> Baseline:
    result = Baseline(target.name, target.connection.safe_url())
    try:
        with scratch_database(target.connection, "baseline") as scratch:
            migrate.deploy(Target("scratch", scratch, target.chains), migrations_dir,
                           run=migrate.StepRun(check_rows=False))
            with connect_to(scratch) as conn:
                wanted = read_schema(conn)
    except psycopg.Error as exc:
        raise MigrationError(f"{target.name}: baseline builds the migrations in a scratch "
                             f"database beside it and could not: {first_line(exc)} (the role "
                             "needs CREATEDB)") from exc
    with connect_to(target.connection) as conn:
        result.differences = differences(read_schema(conn), wanted)
    return result


def baseline(targets: list[Target], migrations_dir: Path) -> list[Baseline]:
    """Prove each target's schema equals the migrations' and stamp every chain at its head.

    Returns one ``Baseline`` per target; if any has differences, none was stamped.

    Raises:
        MigrationError: a target already has a migration history (use ``migrate resolve``).
        ConfigError: a target is reached through PgBouncer.
    """
    for target in targets:
        require_direct(target, "migrate baseline", SCRATCH_HELD)
    for target in targets:
        history = _history(target, migrations_dir)
        if history:
            raise MigrationError(
                f"{target.name}: the database already records migrations ({', '.join(history)});"
                " baseline adopts a database without history; use `migrate resolve` or "
                "`migrate deploy`")
    results = [_compare(t, migrations_dir) for t in targets]
    if any(r.differences for r in results):
        return results
    for target, result in zip(targets, results, strict=True):
        with migrate.migration_lock(target) as conn, conn.begin():
            if any(current_revision(conn, c) for c in target.chains):
                raise MigrationError(f"{target.name}: a migration was recorded meanwhile; "
                                     "nothing was stamped")
            for chain in target.chains:
                steps = chain_steps(migrations_dir, chain)
                if steps:
                    command.stamp(alembic_config(migrations_dir, chain, conn),
                                  steps[-1].revision)
                    result.stamped.append(steps[-1])
    return results
