"""``shared-db up``: the whole development set-up in one command."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from shared_db.cli import render
from shared_db.cli.common import console, console_err, lazy, settings, targets
from shared_db.cli.migrate import step_run

if TYPE_CHECKING:
    from shared_db.ops import migrate, monitoring, seeding
    from shared_db.ops import status as status_ops
else:
    migrate = lazy("shared_db.ops.migrate")
    monitoring = lazy("shared_db.ops.monitoring")
    seeding = lazy("shared_db.ops.seeding")
    status_ops = lazy("shared_db.ops.status")


def up() -> None:
    """Start the database if embedded, apply migrations, seed, and print status and row counts."""
    current = settings()
    found = targets(current)
    for target in found:
        migrate.deploy(target, current.migrations_dir,
                       lambda step: console_err.print(f"  applied {step.label}"),
                       run=step_run(current))
    report = seeding.run_seed(current, targets=found)
    console.print(f"Seed: {len(report.users_created)} user(s) created, "
                  f"{len(report.users_existing)} already there.")
    results = [status_ops.status(t, current.migrations_dir) for t in found]
    for result in results:
        console.print(render.status_table(result))
        console.print(render.status_summary(result))
    console.print(render.counts_table({t.name: monitoring.row_counts(t) for t in found}))
    if not all(r.up_to_date for r in results):
        raise typer.Exit(1)
