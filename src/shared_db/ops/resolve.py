"""``migrate resolve``: record by hand that a migration is applied, or rolled back, running none
of it (Prisma's ``migrate resolve``, Alembic's ``stamp``).

Only the edge of a chain's history moves: ``--applied`` takes the next pending migration of its
chain, ``--rolled-back`` the newest applied one, so the version table can never claim a gap.
The stamp is one transaction under the migration lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command

from shared_db.errors import MigrationError
from shared_db.ops.history import Step, alembic_config, all_steps, current_revision, find_step
from shared_db.ops.migrate import migration_lock
from shared_db.ops.targets import Target


@dataclass(frozen=True)
class Resolved:
    target: str
    step: Step
    applied: bool
    """True: now recorded as applied; False: now recorded as rolled back."""


def _locate(targets: list[Target], migrations_dir: Path, ref: str, option: str,
            ) -> tuple[Target, Step]:
    every = all_steps(migrations_dir, tuple(c for t in targets for c in t.chains))
    try:
        step = find_step(every, ref)
    except MigrationError as exc:
        raise MigrationError(f"{option}: {exc}") from None
    return next(t for t in targets if step.chain in t.chains), step


def resolve(targets: list[Target], migrations_dir: Path, ref: str, applied: bool) -> Resolved:
    """Record ``ref`` as applied (``applied``) or rolled back, without running it.

    Raises:
        MigrationError: ``ref`` names no migration, or is not at the edge of its chain.
    """
    option = "--applied" if applied else "--rolled-back"
    target, step = _locate(targets, migrations_dir, ref, option)
    with migration_lock(target) as conn, conn.begin():
        current = current_revision(conn, step.chain)
        if applied and current != step.down_revision:
            state = f"at {current}" if current else "has nothing applied"
            raise MigrationError(
                f"{option} {ref!r}: only the next pending migration of a chain can be marked "
                f"applied; chain {step.chain} {state}, and {step.label} follows "
                f"{step.down_revision or 'nothing'}")
        if not applied and current != step.revision:
            raise MigrationError(
                f"{option} {ref!r}: only the newest applied migration of a chain can be marked "
                f"rolled back; chain {step.chain} is at {current or 'nothing'}")
        cfg = alembic_config(migrations_dir, step.chain, conn)
        command.stamp(cfg, step.revision if applied else (step.down_revision or "base"))
    return Resolved(target.name, step, applied)
