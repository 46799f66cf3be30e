"""``shared-db doctor``: connectivity, server, pool, extensions, migrations; with fixes."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from shared_db.cli.common import console, lazy, targets, titled
from shared_db.errors import ConfigError, DatabaseUnavailableError

if TYPE_CHECKING:
    from shared_db import config
    from shared_db.ops import doctor as doctor_ops
    from shared_db.ops.doctor import Check
else:
    config = lazy("shared_db.config")
    doctor_ops = lazy("shared_db.ops.doctor")

MARKS = {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[red]fail[/]",
         "unknown": "[dim]unknown[/]"}


_FIX_SETTING = ("fix the variable or URL parameter it names; the README's Environment section "
                "lists them and their rules")


def _checks() -> list[Check]:
    # A setting read only once a check needs it (SHARED_DB_MIGRATIONS_DIR) is refused in the
    # report as well, like those read up front.
    try:
        current = config.load_settings()
        return doctor_ops.diagnose(current, targets(current))
    except ConfigError as error:
        return [doctor_ops.Check("settings", error.field, "fail", error.rule, _FIX_SETTING)]


def doctor(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
           ) -> None:
    """Diagnose the set-up; exit 2 when the settings are refused, 3 when a database cannot be
    reached, 1 when another check fails."""
    checks = _checks()
    if as_json:
        console.print_json(json.dumps({"checks": [dataclasses.asdict(c) for c in checks]}))
    else:
        table = Table(title=titled("shared-db doctor"), title_justify="left", show_lines=True)
        for column in ("database", "check", "", "detail", "fix"):
            table.add_column(column)
        for c in checks:
            # Text, not markup: a detail quotes database names and server messages, where
            # "[/b]" would raise and "[red]" would vanish from the fix a user copies.
            table.add_row(Text(c.target), Text(c.name), MARKS[c.status], Text(c.detail),
                          Text(c.fix or ""))
        console.print(table)
    if any(c.target == "settings" and c.status == "fail" for c in checks):
        raise typer.Exit(2)  # as every other command exits on a refused setting
    # A read replica is connected to at open() as the primary is: unreachable, it fails too.
    unreachable = [c for c in checks if c.name in ("connection", "read replica")
                   and c.status == "fail"]
    if unreachable:  # after the table, so the fix is shown too
        raise DatabaseUnavailableError(unreachable[0].detail)
    if any(c.status == "fail" for c in checks):
        raise typer.Exit(1)
