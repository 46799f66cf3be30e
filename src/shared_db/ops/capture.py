"""``migrate dev --from-drift``: a database's drift written as a migration, recorded as applied.

Drift as ``migrate status`` shows it is "database vs models"; what must be captured is "database vs
its migrations", so the direction is reversed: the drifted database is reflected into a MetaData,
a scratch database is built by the migrations, and Alembic autogenerates, chain by chain (with the
same ``chain_owns`` scoping as everywhere), the migration taking the scratch database to the
reflected one. Tables the models do not know are left out, as drift leaves them out.

Nothing is written beside the real migrations until it is proven: the migrations folder is copied
to a hidden folder next to it, the new files are generated there, applied to the scratch database,
and the scratch database's catalog must then equal the drifted database's (``ops.catalog``). Only
then are the files moved in (one rename each, so never half a file) and the database stamped at
the new revision in one transaction under the migration lock; a failed stamp removes the files.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import MetaData

from shared_db.engine import connect_to
from shared_db.errors import MigrationError
from shared_db.migrations_folder import check_writable
from shared_db.models import Base
from shared_db.ops import migrate
from shared_db.ops.autogen import _generate, _new_revision, check_name
from shared_db.ops.catalog import differences, read_schema
from shared_db.ops.drift import drift
from shared_db.ops.history import (
    Step,
    alembic_config,
    all_steps,
    applied_steps,
    chain_steps,
    current_revision,
)
from shared_db.ops.offline import step_sql
from shared_db.ops.scratch import scratch_database
from shared_db.ops.targets import SCRATCH_HELD, Target, require_direct


@dataclass
class Captured:
    created: list[Step] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)
    """The migrations' schema compared with the database, in Alembic's words: "database" is what
    the migrations build, "models" is the drifted database."""
    sql: str = ""


def reflect(target: Target, metadata: MetaData) -> MetaData:
    """The database's tables the models know, each marked with its owning service."""
    known = set(metadata.tables)
    reflected = MetaData()
    with connect_to(target.connection) as conn:
        present = [t for t in conn.dialect.get_table_names(conn) if t in known]
        reflected.reflect(conn, only=present)
        conn.rollback()
    for table in reflected.tables.values():
        model = metadata.tables.get(table.name)
        if model is not None:  # ownership is read off table info (``ops.chains``)
            table.info.update(model.info)
        for column in table.columns:
            # Reflection says False; autogenerate would write autoincrement=False (a MySQL
            # option) into every alter_column of the new file.
            column.autoincrement = "auto"
    return reflected


def _check_at_head(target: Target, migrations_dir: Path) -> None:
    with connect_to(target.connection) as conn:
        applied, unknown = applied_steps(conn, migrations_dir, target.chains)
        conn.rollback()
    pending = [s for s in all_steps(migrations_dir, target.chains) if s not in set(applied)]
    if pending or unknown:
        what = pending[0].label if pending else unknown[0]
        raise MigrationError(f"--from-drift: the database is not at the head of its migrations "
                             f"({what}); `shared-db migrate deploy` first")


def capture(target: Target, migrations_dir: Path, name: str,
            metadata: MetaData | None = None) -> Captured:
    """Write the database's drift as a migration of each owning chain and stamp it applied.

    Raises:
        MigrationError: bad or duplicate name, pending migrations, or a drift the migrations
            generated could not reproduce (then nothing is written or stamped).
    """
    require_direct(target, "migrate dev --from-drift", SCRATCH_HELD)
    md = metadata or Base.metadata
    check_name(name, migrations_dir, target.chains)
    check_writable(migrations_dir, target.chains)
    _check_at_head(target, migrations_dir)
    result = Captured()
    live = reflect(target, md)
    with connect_to(target.connection) as conn:
        wanted = read_schema(conn)
    revision = _new_revision(migrations_dir, target.chains)
    run = migrate.StepRun(check_rows=False)
    work = Path(tempfile.mkdtemp(prefix=".capture-", dir=migrations_dir.parent))
    try:
        copy = work / migrations_dir.name
        shutil.copytree(migrations_dir, copy, ignore=shutil.ignore_patterns("__pycache__"))
        with scratch_database(target.connection, "capture") as scratch_conn:
            scratch = Target("capture", scratch_conn, target.chains)
            migrate.deploy(scratch, copy, run=run)
            with connect_to(scratch_conn) as conn:
                # What the migrations build compared with the database itself (not the
                # models): these are the chains that get a migration.
                result.drift = sorted(drift(conn, target.chains, live))
                left = differences(wanted, read_schema(conn))
                generated = [_generate(conn, copy, chain, name, revision, live)
                             for chain in target.chains
                             if any(line.startswith(f"{chain}: ") for line in result.drift)]
            if generated:
                migrate.deploy(scratch, copy, run=run)
                with connect_to(scratch_conn) as conn:
                    left = differences(wanted, read_schema(conn))
        if not generated and not left:
            return result
        if left:
            raise MigrationError("--from-drift: a migration generated from the database does not "
                                 "reproduce it (" + "; ".join(left[:5]) + "); nothing was "
                                 "written. Write that migration by hand, or undo the manual "
                                 "change")
        try:
            for path in generated:
                final = migrations_dir / path.relative_to(copy)
                final.parent.mkdir(parents=True, exist_ok=True)
                # Copied next to its place, then renamed: the hidden copy may be on another
                # file system (a migrations folder that is a volume or a bind mount), which no
                # rename crosses.
                partial = final.with_name(f".{final.name}.partial")
                shutil.copyfile(path, partial)
                os.replace(partial, final)
                result.files.append(final)
            _stamp(target, migrations_dir, revision)
        except BaseException:
            for path in result.files:
                path.unlink(missing_ok=True)
            raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result.created = [s for c in target.chains for s in chain_steps(migrations_dir, c)
                      if s.revision == revision]
    result.sql = "\n".join(step_sql(migrations_dir, s) for s in result.created)
    return result


def _stamp(target: Target, migrations_dir: Path, revision: str) -> None:
    """Every chain that gained ``revision`` recorded at it, all in one transaction."""
    from alembic import command

    steps = [s for c in target.chains for s in chain_steps(migrations_dir, c)
             if s.revision == revision]
    with migrate.migration_lock(target) as conn, conn.begin():
        for step in steps:
            if current_revision(conn, step.chain) != step.down_revision:
                raise MigrationError(f"--from-drift: chain {step.chain} moved while capturing; "
                                     "nothing was stamped")
            command.stamp(alembic_config(migrations_dir, step.chain, conn), step.revision)
