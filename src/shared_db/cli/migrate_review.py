"""``shared-db migrate sql | lint | resolve | baseline``: review migrations before they run, and
record by hand what a database has applied."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from shared_db.cli import render_review as render
from shared_db.cli.common import console, lazy, settings, targets
from shared_db.errors import ValidationError

if TYPE_CHECKING:
    from shared_db.ops import baseline as baseline_ops
    from shared_db.ops import lint as lint_ops
    from shared_db.ops import resolve as resolve_ops
    from shared_db.ops import review
else:
    baseline_ops = lazy("shared_db.ops.baseline")
    lint_ops = lazy("shared_db.ops.lint")
    resolve_ops = lazy("shared_db.ops.resolve")
    review = lazy("shared_db.ops.review")

JSON = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def sql(start: Annotated[str | None, typer.Option(
            "--from", help="Start after this migration ('base': from the first); default: "
                           "what each database has applied.")] = None,
        end: Annotated[str | None, typer.Option(
            "--to", help="End with this migration (default: the newest).")] = None,
        as_json: JSON = False) -> None:
    """The SQL of the pending (or the given) migrations, in the order deploy runs them."""
    current = settings()
    # With --from nothing is connected to: the embedded server is not started for it.
    found = targets(current, offline=start is not None)
    results = review.migration_sql(found, current.migrations_dir, start, end)
    if as_json:
        console.print_json(render.dumps(render.sql_json(results)))
    else:
        render.print_targets_sql(console, results)


def lint(as_json: JSON = False) -> None:
    """Check every migration for what it locks and breaks; exit 1 on unacknowledged findings."""
    lints = lint_ops.lint_all(settings().migrations_dir)
    if as_json:
        console.print_json(render.dumps(render.lint_json(lints)))
    else:
        render.print_lint(console, lints)
    if any(lint.open for lint in lints):
        raise typer.Exit(1)


def resolve(applied: Annotated[str | None, typer.Option(
                "--applied", help="Record this migration as applied, running none of it.")]
            = None,
            rolled_back: Annotated[str | None, typer.Option(
                "--rolled-back", help="Record this migration as rolled back, running none of "
                                      "it.")] = None,
            as_json: JSON = False) -> None:
    """Record by hand that a migration was applied or rolled back (after a manual fix)."""
    if (applied is None) == (rolled_back is None):
        raise ValidationError("--applied, --rolled-back", "give exactly one of them, with a "
                              "migration (e.g. auth:20260103000000)")
    current = settings()
    result = resolve_ops.resolve(targets(current), current.migrations_dir,
                                 applied or rolled_back or "", applied is not None)
    if as_json:
        console.print_json(render.dumps(render.resolved_json(result)))
    else:
        state = "applied" if result.applied else "rolled back"
        console.print(f"{result.step.label} recorded as {state} on {result.target}; "
                      "nothing was run.")


def baseline(as_json: JSON = False) -> None:
    """Stamp a database without history at head once its schema equals the migrations'."""
    current = settings()
    results = baseline_ops.baseline(targets(current), current.migrations_dir)
    if as_json:
        console.print_json(render.dumps(render.baseline_json(results)))
    else:
        for result in results:
            console.print(render.baseline_table(result))
    if any(r.differences for r in results):
        if not as_json:
            console.print("[red]Not baselined: the schema differs from what the migrations "
                          "build; nothing was stamped.[/]")
        raise typer.Exit(4)
