"""``shared-db migrate adopt``: take over a database Prisma Migrate made from the guide."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from shared_db.cli import render_adopt as render
from shared_db.cli.common import console, lazy, settings, targets
from shared_db.cli.render_review import dumps
from shared_db.errors import (
    AdoptionFailedError,
    AdoptionMismatchError,
    AdoptionRefusedError,
    SharedDbError,
)

if TYPE_CHECKING:
    from shared_db.ops import adopt as adopt_ops
    from shared_db.ops import locks
else:
    adopt_ops = lazy("shared_db.ops.adopt")
    locks = lazy("shared_db.ops.locks")


def adopt(dry_run: Annotated[bool, typer.Option(
              "--dry-run", help="Print the conversion's SQL and the checks; change nothing.")]
          = False,
          as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Convert a Prisma-made database into shared-db's schema, in one verified transaction."""
    try:
        current = settings()
        result = adopt_ops.adopt(targets(current), current.migrations_dir, dry_run=dry_run,
                                 policy=locks.LockPolicy.from_settings(current))
    except SharedDbError as exc:
        # Every outcome has its document: a script reading --json must never read nothing.
        problems = exc.problems if isinstance(exc, AdoptionRefusedError) else []
        if as_json:
            console.print_json(dumps(render.refused_json(
                str(exc), problems,
                isinstance(exc, AdoptionMismatchError | AdoptionFailedError))))
        else:
            for line in problems:
                console.print(f"  {line}", soft_wrap=True, markup=False)
        raise
    if as_json:
        console.print_json(dumps(render.adoption_json(result)))
    else:
        render.print_adoption(console, result)
