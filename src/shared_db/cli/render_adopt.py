"""Rich output and the JSON document of ``migrate adopt``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shared_db.cli.common import titled
from shared_db.cli.render_review import print_sql

if TYPE_CHECKING:
    from shared_db.ops.adopt import Adoption


def adoption_json(result: Adoption) -> dict[str, Any]:
    return {
        "adopted": not result.dry_run,
        "dry_run": result.dry_run,
        "target": result.target,
        "database": result.database,
        "prisma_migrations": result.prisma_migrations,
        "conversions": result.conversions,
        "lowered": result.lowered,
        "sql": result.statements,
        "checks": [{"table": c.table, "rows": c.rows, "checksum": c.checksum,
                    "rows_after": c.rows_after, "checksum_after": c.checksum_after,
                    "ok": c.ok if not result.dry_run else None} for c in result.checks],
        "stamped": [s.label for s in result.stamped],
    }


def refused_json(message: str, problems: list[str], rolled_back: bool) -> dict[str, Any]:
    return {"adopted": False, "rolled_back": rolled_back, "error": message,
            "problems": problems}


def checks_table(result: Adoption) -> Table:
    title = "Data before the conversion" if result.dry_run else "Data checked before COMMIT"
    table = Table(title=titled(title), title_justify="left")
    for name in ("table", "rows", "checksum") if result.dry_run else (
            "table", "rows", "rows after", "checksum", "same"):
        table.add_column(name, justify="right" if name.startswith("rows") else "left")
    for check in result.checks:
        if result.dry_run:
            table.add_row(check.table, str(check.rows), check.checksum)
        else:
            table.add_row(check.table, str(check.rows), str(check.rows_after), check.checksum,
                          "[green]yes[/]" if check.ok else "[red]no[/]")
    return table


def print_adoption(console: Console, result: Adoption) -> None:
    console.print(f"Prisma migrations found in {escape(result.database)}: "
                  f"{escape(', '.join(result.prisma_migrations))}", soft_wrap=True)
    if result.dry_run:
        console.print("-- the conversion, one transaction:", style="dim")
        print_sql(console, "BEGIN;\n" + "".join(f"{s.rstrip()};\n" for s in result.statements)
                  + "COMMIT;\n")
    console.print(checks_table(result))
    uuids = sum(1 for kind in result.conversions.values() if kind == "uuid")
    lowered = f", {', '.join(result.lowered)} lower-cased" if result.lowered else ""
    console.print(f"{uuids} id column(s) to uuid, {len(result.conversions) - uuids} timestamp "
                  f"column(s) to timestamptz (read as UTC){escape(lowered)}.", soft_wrap=True)
    if result.dry_run:
        console.print("Dry run: every id is a uuid and no two ids or emails differ only in "
                      "case; before COMMIT adopt compares these counts "
                      "and checksums and the schema with a scratch build of the migrations, "
                      "then stamps every chain at its head. Nothing was changed.", soft_wrap=True)
        return
    heads = ", ".join(s.label for s in result.stamped)
    console.print(f"[green]Adopted:[/] the schema equals what the migrations build, the data "
                  f"is unchanged, stamped at {escape(heads)}; {escape('_prisma_migrations')} "
                  "was dropped.", soft_wrap=True)
