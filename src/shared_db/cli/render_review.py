"""Rich output and JSON documents for the review commands: lint, sql, resolve, baseline."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.syntax import Syntax
from rich.table import Table

from shared_db.cli.common import titled

if TYPE_CHECKING:
    from shared_db.ops.baseline import Baseline
    from shared_db.ops.lint import StepLint
    from shared_db.ops.offline import TargetSql
    from shared_db.ops.resolve import Resolved
    from shared_db.ops.review import DryRun


def print_sql(console: Console, sql: str) -> None:
    """All of ``sql``, never cut or folded at the console's width (the terminal wraps long
    lines itself, so copied SQL stays intact): highlighted at a terminal, verbatim elsewhere."""
    if console.is_terminal:
        highlighted = Syntax(sql, "sql", theme="ansi_dark").highlight(sql.rstrip("\n"))
        console.print(highlighted, soft_wrap=True)
    else:
        console.out(sql, highlight=False, end="" if sql.endswith("\n") else "\n")


def lint_json(lints: list[StepLint]) -> dict[str, Any]:
    return {
        "ok": not any(lint.open for lint in lints),
        "migrations": [
            {
                "migration": lint.step.label,
                "non_transactional": lint.non_transactional,
                "findings": [
                    {"rule": f.rule, "table": f.table, "type": f.type_name,
                     "statement": f.statement, "lock": f.lock_taken,
                     "problem": f.details.problem, "recipe": f.details.recipe,
                     "acknowledged": lint.acknowledged.get(f.rule)}
                    for f in lint.findings
                ],
            }
            for lint in lints
        ],
    }


def print_lint(console: Console, lints: list[StepLint]) -> None:
    flagged = [lint for lint in lints if lint.findings]
    for lint in flagged:
        for f in lint.findings:
            reason = lint.acknowledged.get(f.rule)
            head = "[yellow]acknowledged[/]" if reason else "[bold red]unsafe[/]"
            on = f.table or (f"type {f.type_name}" if f.type_name
                             else "the migration's own transaction")
            console.print(f"{head} {escape(lint.step.label)} [bold]{f.rule}[/] on "
                          f"{escape(on)}", soft_wrap=True)
            console.print(f"  statement: {escape(f.statement)}", soft_wrap=True)
            console.print(f"  lock: {f.lock_taken}; {f.details.problem}", soft_wrap=True)
            console.print(f"  safe recipe: {f.details.recipe}", soft_wrap=True)
            if reason:
                console.print(f"  reason given: {escape(reason)}", soft_wrap=True)
    unsafe = sum(len(lint.open) for lint in lints)
    if unsafe:
        always = sum(f.rule == "transaction-control" for lint in lints for f in lint.open)
        console.print(f"[bold red]{unsafe} unacknowledged finding(s)[/] in {len(lints)} "
                      "migration(s); on a table holding rows, deploy refuses them"
                      + (f" ({always} transaction-control: on any database)" if always
                         else "") + ".")
    else:
        console.print(f"[green]{len(lints)} migration(s) checked, no unacknowledged "
                      "finding.[/]")


def sql_json(results: list[TargetSql]) -> dict[str, Any]:
    return {"targets": [
        {"target": r.target, "database": r.database,
         "migrations": [{"migration": s.label, "sql": sql} for s, sql in r.steps]}
        for r in results]}


def print_targets_sql(console: Console, results: list[TargetSql]) -> None:
    for result in results:
        console.print(f"-- target {result.target} ({escape(result.database)}): "
                      f"{len(result.steps)} migration(s)", soft_wrap=True, style="dim")
        if result.steps:
            print_sql(console, result.script)


Refusal = tuple["StepLint", str, list[str]]


def dry_run_stop(runs: list[DryRun]) -> tuple[int, Refusal | None]:
    """How many migrations ``deploy`` would apply, and the refusal it would stop at, if any.

    Deploy goes through the targets in order and stops at the first step it refuses: every
    pending step of the targets before, and the steps before it in its own target, are applied;
    nothing after it is."""
    applied = 0
    for run in runs:
        order = [step for step, _ in run.sql.steps]
        if run.refused:
            first = min(run.refused, key=lambda refusal: order.index(refusal[0].step))
            return applied + order.index(first[0].step), first
        applied += len(order)
    return applied, None


def refusal_text(refusal: Refusal) -> str:
    lint, rule, tables = refusal
    return f"{lint.step.label}: {rule} on {', '.join(tables)}, which holds rows"


def print_dry_run(console: Console, runs: list[DryRun]) -> None:
    print_targets_sql(console, [run.sql for run in runs])
    print_lint(console, [lint for run in runs for lint in run.lints])
    for run in runs:
        for refusal in run.refused:
            console.print(f"[bold red]deploy would refuse[/] {escape(refusal_text(refusal))}",
                          soft_wrap=True)
    applied, stop = dry_run_stop(runs)
    if stop is None:
        console.print(f"Dry run: {applied} migration(s) would be applied; nothing was changed.")
        return
    pending = sum(len(run.sql.steps) for run in runs)
    console.print(f"Dry run: deploy would apply {applied} of the {pending} pending migration(s), "
                  f"then refuse {escape(stop[0].step.label)} and stop; nothing was changed.",
                  soft_wrap=True)


def resolved_json(result: Resolved) -> dict[str, Any]:
    return {"target": result.target, "migration": result.step.label,
            "state": "applied" if result.applied else "rolled back"}


def baseline_json(results: list[Baseline]) -> dict[str, Any]:
    return {
        "baselined": not any(r.differences for r in results),
        "targets": [{"target": r.target, "database": r.database,
                     "differences": r.differences,
                     "stamped": [s.label for s in r.stamped]} for r in results],
    }


def baseline_table(result: Baseline) -> Table:
    table = Table(title=titled(f"Baseline: {result.target} ({result.database})"),
                  title_justify="left")
    if result.differences:
        table.add_column("difference from what the migrations build")
        for line in result.differences:
            table.add_row(escape(line))
    else:
        table.add_column("chain")
        table.add_column("stamped at")
        for step in result.stamped:
            table.add_row(step.chain, f"{step.revision}_{step.name}")
    return table


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2)
