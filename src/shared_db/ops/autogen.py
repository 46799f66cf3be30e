"""``migrate dev``: turn model changes into a new migration of the owning chain, then apply it.

Like Prisma's ``migrate dev`` it replays every migration into a shadow database first. Comparing
the models with the shadow tells what the new migration must do; comparing them with the real
database must tell the same. If it does not, the real database has drifted from its migrations
(someone changed it by hand), and the command refuses rather than offering to wipe it.

With ``create_only`` nothing is applied to the real database: the shadow is compared with it at
the revisions it has applied, and the new migration is only written (and linted) for review.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alembic import command
from sqlalchemy import MetaData

from shared_db.engine import connect_to
from shared_db.errors import DriftError, MigrationError, ValidationError
from shared_db.migrations_folder import check_writable
from shared_db.models import Base
from shared_db.ops import migrate
from shared_db.ops.drift import drift
from shared_db.ops.history import Step, alembic_config, all_steps, applied_steps, chain_steps
from shared_db.ops.lint import StepLint, lint_steps
from shared_db.ops.offline import step_sql
from shared_db.ops.scratch import scratch_database
from shared_db.ops.targets import SCRATCH_HELD, Target, require_direct

NAME_RULE = re.compile(r"^[a-z][a-z0-9_]{0,59}$")


@dataclass
class DevResult:
    created: list[Step] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    sql: str = ""
    applied: list[Step] = field(default_factory=list)
    lints: list[StepLint] = field(default_factory=list)


def check_name(name: str, migrations_dir: Path, chains: tuple[str, ...]) -> None:
    """Raises ValidationError unless ``name`` is snake_case, MigrationError when a migration
    has it already."""
    if not NAME_RULE.match(name):
        raise ValidationError("--name", "use lower-case letters, digits and underscores, "
                              f"starting with a letter, at most 60 characters, got {name!r}")
    taken = [s.label for s in all_steps(migrations_dir, chains) if s.name == name]
    if taken:
        raise MigrationError(f"--name {name!r} is already used by {taken[0]}; choose another")


def _new_revision(migrations_dir: Path, chains: tuple[str, ...]) -> str:
    existing = {s.revision for s in all_steps(migrations_dir, chains)}
    moment = datetime.now(UTC).replace(microsecond=0)
    newest = max(existing, default="0")
    while (rev := moment.strftime("%Y%m%d%H%M%S")) in existing or rev <= newest:
        moment += timedelta(seconds=1)
    return rev


def _applied_prefix(target: Target, migrations_dir: Path) -> int:
    """How many migrations, in global order, the database has applied (create-only)."""
    with connect_to(target.connection) as conn:
        applied, _ = applied_steps(conn, migrations_dir, target.chains)
        conn.rollback()
    if all_steps(migrations_dir, target.chains)[:len(applied)] != applied:
        raise MigrationError("--create-only: the database has applied migrations out of their "
                             "global order; `shared-db migrate deploy` first")
    return len(applied)


def dev(target: Target, migrations_dir: Path, name: str,
        metadata: MetaData | None = None, create_only: bool = False) -> DevResult:
    """Apply pending migrations, generate one for the model changes, show its SQL, apply it.

    With ``create_only``, write the migration and its SQL only; apply nothing.

    Raises:
        MigrationError: bad or duplicate name, or a migration failed to apply.
        DriftError: the database differs from what its migrations produce.
    """
    require_direct(target, "migrate dev", SCRATCH_HELD)
    md = metadata or Base.metadata
    check_name(name, migrations_dir, target.chains)
    check_writable(migrations_dir, target.chains)
    dev_run = migrate.StepRun(check_rows=False)
    result = DevResult()
    if not create_only:
        result.applied = migrate.deploy(target, migrations_dir, run=dev_run).steps
    with scratch_database(target.connection, "shadow") as shadow_conn:
        shadow = Target("shadow", shadow_conn, target.chains)
        limit = _applied_prefix(target, migrations_dir) if create_only else None
        migrate.deploy(shadow, migrations_dir, limit=limit, run=dev_run)
        with connect_to(shadow_conn) as conn:
            wanted = drift(conn, target.chains, md)
        with connect_to(target.connection) as conn:
            live = drift(conn, target.chains, md)
        if sorted(wanted) != sorted(live):
            extra = sorted(set(live) ^ set(wanted))
            raise DriftError(
                f"the database {target.connection.safe_url()} has drifted from its migrations: "
                + "; ".join(extra[:5]) + ". Undo the manual change, keep it as a migration with "
                "`shared-db migrate dev --from-drift --name N`, or `shared-db migrate reset` a "
                "development database; no migration was created")
        if create_only:
            migrate.deploy(shadow, migrations_dir, run=dev_run)
            with connect_to(shadow_conn) as conn:
                wanted = drift(conn, target.chains, md)
        if not wanted:
            return result
        changed = [c for c in target.chains if any(w.startswith(f"{c}: ") for w in wanted)]
        revision = _new_revision(migrations_dir, target.chains)
        with connect_to(shadow_conn) as conn:
            for chain in changed:
                result.files.append(_generate(conn, migrations_dir, chain, name, revision, md))
    try:
        result.created = [s for c in changed for s in chain_steps(migrations_dir, c)
                          if s.revision == revision]
        result.sql = "\n".join(step_sql(migrations_dir, s) for s in result.created)
        result.lints = lint_steps(migrations_dir, target.chains, only=set(result.created))
        if not create_only:
            result.applied += migrate.deploy(target, migrations_dir, run=dev_run).steps
    except Exception:
        for path in result.files:
            path.unlink(missing_ok=True)
        raise
    return result


def _generate(conn: object, migrations_dir: Path, chain: str, name: str, revision: str,
              metadata: MetaData) -> Path:
    versions = migrations_dir / "versions" / chain
    versions.mkdir(parents=True, exist_ok=True)
    heads = [s.revision for s in chain_steps(migrations_dir, chain)][-1:]
    cfg = alembic_config(migrations_dir, chain, conn, metadata=metadata)  # type: ignore[arg-type]
    script = command.revision(cfg, message=name, autogenerate=True, rev_id=revision,
                              version_path=str(versions), head=heads[0] if heads else "base")
    if script is None or isinstance(script, list):
        raise MigrationError(f"could not generate a migration for chain {chain!r}")
    return Path(script.path)
