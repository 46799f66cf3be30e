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
from shared_db.ops.history import (
    Step,
    alembic_config,
    all_steps,
    chain_steps,
    current_revision,
    find_step,
)
from shared_db.ops.loading import describe, migration_code
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
        _check_edge(option, ref, step, current, _is_applied(migrations_dir, step, current))
        cfg = alembic_config(migrations_dir, step.chain, conn)

        def failed(exc: BaseException) -> MigrationError:
            return MigrationError(f"{option} {ref!r}: could not record it: {describe(exc)}; "
                                  "nothing was recorded")

        with migration_code(migrations_dir, failed):
            command.stamp(cfg, step.revision if applied else (step.down_revision or "base"))
    return Resolved(target.name, step, applied)


def _check_edge(option: str, ref: str, step: Step, current: str | None,
                done: bool | None) -> None:
    at = f"chain {step.chain} is at {current}" if current else (
        f"chain {step.chain} has nothing applied")
    if option == "--applied" and current != step.down_revision:
        if done:
            raise MigrationError(f"{option} {ref!r}: {step.label} is already applied ({at}); "
                                 "only the next pending migration of a chain can be marked "
                                 "applied")
        raise MigrationError(
            f"{option} {ref!r}: only the next pending migration of a chain can be marked "
            f"applied; {at}, and {step.label} follows {step.down_revision or 'nothing'}")
    if option == "--rolled-back" and current != step.revision:
        if done is False:
            raise MigrationError(f"{option} {ref!r}: {step.label} is not applied ({at}); "
                                 "only the newest applied migration of a chain can be marked "
                                 "rolled back")
        raise MigrationError(
            f"{option} {ref!r}: only the newest applied migration of a chain can be marked "
            f"rolled back; {at}")


def _is_applied(migrations_dir: Path, step: Step, current: str | None) -> bool | None:
    """Whether the chain at ``current`` has ``step`` applied; None: ``current`` is a revision
    no file defines, so it cannot be told."""
    ids = [s.revision for s in chain_steps(migrations_dir, step.chain)]
    if current is None:
        return False
    if current not in ids:
        return None
    return ids.index(step.revision) <= ids.index(current)
