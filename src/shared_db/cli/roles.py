"""``shared-db roles``: least-privilege login roles, one per service."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from shared_db.cli.common import console, lazy, settings, targets

if TYPE_CHECKING:
    from shared_db.ops import roles as role_ops
else:
    role_ops = lazy("shared_db.ops.roles")


def roles(prefix: str = typer.Option("shared_db_", "--prefix",
                                     help="Role names are PREFIX + service name.")) -> None:
    """Create one login role per service with rights on its own tables (shared topology) or
    its own database (per service), plus the few reads and audit writes the package needs."""
    from shared_db.services import SERVICES

    done = role_ops.apply(targets(settings()), prefix)
    console.print("\n".join(done), soft_wrap=True)
    console.print(f"{len(done)} grant(s); roles: "
                  + ", ".join(role_ops.role_name(prefix, s) for s in SERVICES)
                  + ". Set passwords with ALTER ROLE ... PASSWORD.")
