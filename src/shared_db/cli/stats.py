"""``shared-db stats``: table sizes, index usage, redundant indexes, top statements and
methods."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from shared_db.cli.common import console, lazy, settings, targets, titled

if TYPE_CHECKING:
    from shared_db.ops import monitoring
else:
    monitoring = lazy("shared_db.ops.monitoring")


def _table(title: str, headers: list[str], rows: list[list[object]]) -> Table:
    table = Table(title=titled(title), title_justify="left")
    for header in headers:
        table.add_column(header)
    for row in rows:
        # Text, not str: a cell holds names and statements from the database, and rich would
        # read "[red]" in one as a style and "[/b]" as a tag closing nothing (an exception).
        table.add_row(*[Text(str(v)) for v in row])
    return table


def _render(stats: monitoring.Stats) -> None:
    console.print(f"[bold]{escape(stats.target)}[/] ({escape(stats.database)})")
    console.print(_table("Table sizes", ["table", "size", "bytes"],
                         [[t.table, t.size, t.bytes] for t in stats.tables]))
    console.print(_table("Index usage", ["table", "index", "scans", "tuples read",
                                         "tuples fetched", "bytes"],
                         [[i.table, i.index, i.scans, i.tuples_read, i.tuples_fetched, i.bytes]
                          for i in stats.indexes]))
    console.print("Unused indexes (no scans, not unique): "
                  + (", ".join(stats.unused_indexes) or "none"), markup=False)
    console.print(_table("Redundant indexes", ["table", "index", "why", "kept"],
                         [[d.table, d.index, d.reason, d.covered_by]
                          for d in stats.duplicate_indexes]))
    if stats.statements_note:
        console.print(f"Top statements: {stats.statements_note}", markup=False)
    else:
        console.print(_table("Top statements by total time", ["calls", "total ms", "mean ms",
                                                               "rows", "query"],
                             [[s.calls, f"{s.total_ms:.1f}", f"{s.mean_ms:.2f}", s.rows,
                               s.query[:80]] for s in stats.top_statements]))
        console.print(_table("Top methods by total time", ["method", "calls", "total ms",
                                                            "mean ms", "rows"],
                             [[m.method, m.calls, f"{m.total_ms:.1f}", f"{m.mean_ms:.2f}", m.rows]
                              for m in stats.top_methods]))


def stats(as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
          = False,
          top: Annotated[int, typer.Option(help="How many statements to list.", min=1,
                                           max=100)] = 10) -> None:
    """Health reports (guide 9.2) for every database of the topology."""
    results = [monitoring.collect(t, top) for t in targets(settings())]
    if as_json:
        doc = {"targets": [dataclasses.asdict(r) for r in results]}
        console.print_json(json.dumps(doc))
        return
    for result in results:
        _render(result)
