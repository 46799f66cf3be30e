"""What a deploy would run, for review before it runs: ``migrate sql`` and
``migrate deploy --dry-run``. Nothing here writes to a database."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from shared_db.engine import connect_to
from shared_db.ops.lint import StepLint, lint_steps, tables_with_rows
from shared_db.ops.migrate import pending_steps
from shared_db.ops.offline import TargetSql, render, select_steps
from shared_db.ops.targets import Target


def migration_sql(targets: list[Target], migrations_dir: Path, start: str | None = None,
                  end: str | None = None) -> list[TargetSql]:
    """Per target, the SQL of its pending migrations, or of those after ``start`` up to ``end``.

    Without ``start`` each database is asked what it has applied; with it none is connected to.

    Raises:
        MigrationError: a bound names no migration, or a database has unknown revisions.
    """
    chosen = select_steps(migrations_dir, targets, start, end)
    if start is None:
        for index, target in enumerate(targets):
            with connect_to(target.connection) as conn:
                todo = set(pending_steps(conn, migrations_dir, target))
                conn.rollback()
            chosen[index] = [s for s in chosen[index] if s in todo]
    return [render(migrations_dir, t, steps) for t, steps in zip(targets, chosen, strict=True)]


@dataclass
class DryRun:
    """A target's pending migrations: their SQL, their lint, and what deploy would refuse."""

    sql: TargetSql
    lints: list[StepLint] = field(default_factory=list)
    refused: list[tuple[StepLint, str, list[str]]] = field(default_factory=list)
    """(step, rule, tables holding rows) for each open finding deploy would stop at."""


def dry_run(targets: list[Target], migrations_dir: Path) -> list[DryRun]:
    """What ``deploy`` would do on each target, without doing any of it."""
    results = []
    for target_sql, target in zip(migration_sql(targets, migrations_dir), targets, strict=True):
        todo = {step for step, _ in target_sql.steps}
        lints = lint_steps(migrations_dir, target.chains, only=todo)
        run = DryRun(target_sql, lints)
        with connect_to(target.connection) as conn:
            for lint in lints:
                for finding in lint.open:
                    full = tables_with_rows(conn, finding)
                    if full:
                        run.refused.append((lint, finding.rule, full))
            conn.rollback()
        results.append(run)
    return results
