"""Drift while migrations are pending: the database compared with its applied migrations.

Models-vs-database drift means nothing while migrations are pending (the models are ahead by
those migrations), so ``migrate status`` then replays the history up to what the database has
applied in a shadow (scratch) database and compares the two catalogs (``ops.catalog``): any
difference is a change made by hand. Only ``status`` with pending migrations pays for it; with
nothing pending the models comparison (and its remembered clean answers) stays as it was.
"""

from __future__ import annotations

from pathlib import Path

import psycopg

from shared_db.engine import connect_to
from shared_db.errors import DatabaseUnavailableError
from shared_db.ops import migrate
from shared_db.ops.catalog import differences, read_schema
from shared_db.ops.history import Step, all_steps
from shared_db.ops.scratch import scratch_database
from shared_db.ops.targets import Target

NO_SHADOW = (psycopg.errors.InsufficientPrivilege, DatabaseUnavailableError)
"""Why a shadow database may not be had: no CREATEDB, or no connection to ``postgres``."""


def replayable(migrations_dir: Path, target: Target, applied: list[Step]) -> bool:
    """Whether the applied migrations are the first ones in global order (what a replay with
    ``deploy``'s ``limit`` rebuilds); a database with none applied has nothing to compare."""
    return bool(applied) and all_steps(migrations_dir, target.chains)[:len(applied)] == applied


def applied_drift(target: Target, migrations_dir: Path, applied: list[Step]) -> list[str]:
    """One line per object that differs between the database and its applied migrations."""
    with connect_to(target.connection) as conn:
        live = read_schema(conn)
    with scratch_database(target.connection, "shadow") as shadow_conn:
        shadow = Target("shadow", shadow_conn, target.chains)
        migrate.deploy(shadow, migrations_dir, limit=len(applied),
                       run=migrate.StepRun(check_rows=False))
        with connect_to(shadow_conn) as conn:
            built = read_schema(conn)
    return differences(live, built)
