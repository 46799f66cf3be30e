"""Rich tables and JSON documents for command results."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from rich.table import Table

from shared_db.cli.common import titled

if TYPE_CHECKING:
    from shared_db.ops.status import TargetStatus


def status_json(statuses: list[TargetStatus]) -> str:
    doc: dict[str, Any] = {
        "up_to_date": all(s.up_to_date for s in statuses),
        "targets": [
            {
                "target": s.target,
                "database": s.database,
                "up_to_date": s.up_to_date,
                "applied": [step.label for step in s.applied],
                "pending": [step.label for step in s.pending],
                "unknown": s.unknown,
                "drift": s.drift,
                "drift_checked": s.drift_checked,
            }
            for s in statuses
        ],
    }
    return json.dumps(doc, indent=2)


def status_table(status: TargetStatus) -> Table:
    table = Table(title=titled(f"Migrations: {status.target} ({status.database})"),
                  title_justify="left")
    for column in ("chain", "migration", "state"):
        table.add_column(column)
    for step in status.applied:
        table.add_row(step.chain, f"{step.revision}_{step.name}", "[green]applied[/]")
    for step in status.pending:
        table.add_row(step.chain, f"{step.revision}_{step.name}", "[yellow]pending[/]")
    for ref in status.unknown:
        table.add_row(ref.split(":")[0], ref.split(":")[1], "[red]applied, no file[/]")
    return table


def status_summary(status: TargetStatus) -> str:
    if status.unknown:
        return f"[red]{status.target}: the database has migrations no file defines[/]"
    if status.pending:
        summary = f"[yellow]{status.target}: {len(status.pending)} pending migration(s)[/]"
        if status.drift:  # compared with the applied migrations replayed (ops.applied_drift)
            lines = "\n  ".join(status.drift)
            summary += (f"\n[red]{status.target}: drift between the database and its applied "
                        f"migrations:[/]\n  {lines}")
        return summary
    if status.drift:
        lines = "\n  ".join(status.drift)
        return f"[red]{status.target}: drift between models and database:[/]\n  {lines}"
    return f"[green]{status.target}: up to date, no drift[/]"


def counts_table(counts: dict[str, dict[str, int]]) -> Table:
    table = Table(title=titled("Rows per table"), title_justify="left")
    for column in ("database", "table", "rows"):
        table.add_column(column, justify="right" if column == "rows" else "left")
    for target, per_table in counts.items():
        for name, rows in per_table.items():
            table.add_row(target, name, str(rows))
    return table
