"""``shared-db split``: copy the shared database into the four per-service databases."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from shared_db.cli.common import console, console_err, lazy, settings

if TYPE_CHECKING:
    from shared_db.ops import split as splitting
else:
    splitting = lazy("shared_db.ops.split")


def split(
    dry_run: bool = typer.Option(False, "--dry-run",
                                 help="Print the plan and the references; write nothing."),
    batch_size: int = typer.Option(5000, "--batch-size", min=1,
                                   help="Rows per copied batch (one target transaction each)."),
) -> None:
    """Copy DATABASE_URL into AUTH/PAYMENTS/ADMIN/PROFILE_DATABASE_URL, verified; re-runnable.

    The source is only read (in one read-only snapshot). Each target gets its service's
    migrations, then its tables' rows in batches; counts and checksums are compared at the end.
    """
    current = settings()
    report = splitting.plan(current) if dry_run else splitting.split(
        current, batch_size=batch_size, progress=lambda service, table, done, total:
        console_err.print(f"  {service}.{table}: {done:,}/{total:,}", style="dim"))
    console.print("Plan:" if dry_run else "Split done:")
    for service, url in report.targets.items():
        console.print(f"  {service} -> {url}", soft_wrap=True)
        for item in (t for t in report.tables if t.service == service):
            state = "" if dry_run else (" verified" if item.verified else " NOT verified")
            console.print(f"    {item.table}: {item.rows:,} row(s){state}")
    console.print("Cross-service foreign keys that become checked references:")
    for ref in report.references:
        console.print(f"  {ref.table}.{ref.column} -> {ref.referred}.id "
                      f"(on delete {ref.on_delete.lower()})")
