"""Migrations as SQL, without a database: Alembic's offline mode, one step at a time.

A step's SQL is exactly what ``deploy`` runs for it: its own ``BEGIN``/``COMMIT`` (with a
``COMMIT``/``BEGIN`` pair around anything in an ``autocommit_block``), its statements, and the
update of its chain's version table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from alembic import command

from shared_db.errors import MigrationError
from shared_db.ops.history import Step, alembic_config, all_steps, find_step
from shared_db.ops.loading import describe, migration_code
from shared_db.ops.targets import Target


def step_sql(migrations_dir: Path, step: Step, up: bool = True) -> str:
    """The SQL ``deploy`` (``up``) or ``down`` runs for ``step``.

    Raises:
        MigrationError: the migration cannot be rendered offline (it reads the database), or
            a file of its chain (or env.py) raises when imported.
    """
    cfg = alembic_config(migrations_dir, step.chain)
    before = step.down_revision or "base"

    def failed(exc: BaseException) -> MigrationError:  # the step's own code failed
        return MigrationError(f"cannot render {step.label} as SQL without a database: "
                              f"{describe(exc)}")

    with migration_code(migrations_dir, failed):
        if up:
            span = f"{step.down_revision}:{step.revision}" if step.down_revision else step.revision
            command.upgrade(cfg, span, sql=True)
        else:
            command.downgrade(cfg, f"{step.revision}:{before}", sql=True)
    buffer = cfg.output_buffer
    return buffer.getvalue() if buffer is not None and hasattr(buffer, "getvalue") else ""


@dataclass
class TargetSql:
    """The SQL of some migrations of one target, in the order deploy applies them."""

    target: str
    database: str
    steps: list[tuple[Step, str]] = field(default_factory=list)

    @property
    def script(self) -> str:
        return "".join(f"-- {step.label}\n{sql}" for step, sql in self.steps)


def _bound(known: list[Step], ref: str | None, option: str) -> Step | None:
    if ref is None or ref == "base":
        return None
    try:
        return find_step(known, ref)
    except MigrationError as exc:
        raise MigrationError(f"{option}: {exc}") from None


def select_steps(migrations_dir: Path, targets: list[Target], start: str | None,
                 end: str | None) -> list[list[Step]]:
    """Per target, the migrations after ``start`` up to ``end`` (both optional; ``base`` is
    before the first), in global order.

    Raises:
        MigrationError: a bound names no migration, or ``end`` comes before ``start``.
    """
    every = all_steps(migrations_dir, tuple(c for t in targets for c in t.chains))
    low, high = _bound(every, start, "--from"), _bound(every, end, "--to")
    if low and high and high.order <= low.order:
        raise MigrationError(f"--to {end!r} must come after --from {start!r} in the global order")
    if end == "base":
        return [[] for _ in targets]
    return [
        [s for s in all_steps(migrations_dir, t.chains)
         if (low is None or s.order > low.order) and (high is None or s.order <= high.order)]
        for t in targets
    ]


def render(migrations_dir: Path, target: Target, steps: list[Step]) -> TargetSql:
    """``steps`` of ``target`` with their SQL."""
    return TargetSql(target.name, target.connection.safe_url(),
                     [(s, step_sql(migrations_dir, s)) for s in steps])
