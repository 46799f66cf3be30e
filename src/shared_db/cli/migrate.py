"""``shared-db migrate dev | deploy | status | down | reset`` (the guide's section 3), and the
review commands of ``cli.migrate_review``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from shared_db.cli import migrate_adopt, migrate_review, render, render_review
from shared_db.cli.common import confirm, console, console_err, lazy, settings, targets
from shared_db.errors import MigrationError, UnsafeMigrationError, ValidationError

if TYPE_CHECKING:
    from shared_db.config import Settings
    from shared_db.ops import autogen, capture, locks, migrate, review, seeding, squash
    from shared_db.ops import status as status_ops
    from shared_db.ops.history import Step
    from shared_db.ops.targets import Target
else:
    autogen = lazy("shared_db.ops.autogen")
    capture = lazy("shared_db.ops.capture")
    locks = lazy("shared_db.ops.locks")
    migrate = lazy("shared_db.ops.migrate")
    review = lazy("shared_db.ops.review")
    seeding = lazy("shared_db.ops.seeding")
    squash = lazy("shared_db.ops.squash")
    status_ops = lazy("shared_db.ops.status")

app = typer.Typer(no_args_is_help=True, help="Create, apply, inspect and roll back migrations.")
app.command("sql")(migrate_review.sql)
app.command()(migrate_review.lint)
app.command()(migrate_review.resolve)
app.command()(migrate_review.baseline)
app.command()(migrate_adopt.adopt)


def _applied(step: Step) -> None:
    console_err.print(f"  applied {step.label}")


def _reverted(step: Step) -> None:
    console_err.print(f"  rolled back {step.label}")


def _notice(text: str) -> None:
    console_err.print(text, soft_wrap=True, markup=False)


def step_run(current: Settings) -> migrate.StepRun:
    """Steps under the configured lock timeout and retries, waits told on stderr."""
    return migrate.StepRun(locks.LockPolicy.from_settings(current), notice=_notice)


@app.command()
def deploy(dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print the SQL and lint of what would run; apply nothing.")] = False,
        ) -> None:
    """Apply every pending migration, without prompts, each step under lock_timeout."""
    current = settings()
    if dry_run:
        runs = review.dry_run(targets(current), current.migrations_dir)
        render_review.print_dry_run(console, runs)
        applied, stop = render_review.dry_run_stop(runs)
        if stop is not None:  # exit 4, as the deploy itself would
            raise UnsafeMigrationError(
                f"deploy would refuse {render_review.refusal_text(stop)}, after applying "
                f"{applied} migration(s); this was a dry run, nothing was changed")
        return
    run = step_run(current)
    total = sum(len(migrate.deploy(t, current.migrations_dir, _applied, run=run).steps)
                for t in targets(current))
    console.print(f"{total} migration(s) applied." if total else "No pending migrations.")


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Applied, pending and drift; exit 0 only when every database is up to date."""
    current = settings()
    results = [status_ops.status(t, current.migrations_dir, cache=current.cache_dir)
               for t in targets(current)]
    if as_json:
        console.print_json(render.status_json(results))
    else:
        for result in results:
            console.print(render.status_table(result))
            console.print(render.status_summary(result))
    if not all(r.up_to_date for r in results):
        raise typer.Exit(1)


@app.command()
def dev(name: Annotated[str, typer.Option("--name", help="snake_case name of the migration")],
        create_only: Annotated[bool, typer.Option(
            "--create-only", help="Write the migration and print its SQL; apply nothing.")]
        = False,
        from_drift: Annotated[bool, typer.Option(
            "--from-drift", help="Write the database's drift as a migration, recorded as "
            "applied there.")] = False) -> None:
    """Generate a migration from model changes, show its SQL and lint, and apply it."""
    current = settings()
    found = targets(current)
    if len(found) != 1:
        raise MigrationError("migrate dev runs on the shared topology (one database); unset "
                             "SHARED_DB_TOPOLOGY to generate migrations")
    if from_drift:
        if create_only:
            raise ValidationError("--from-drift, --create-only", "choose one (--from-drift "
                                  "applies nothing, it records what the database already has)")
        _dev_from_drift(found[0], current.migrations_dir, name)
        return
    result = autogen.dev(found[0], current.migrations_dir, name, create_only=create_only)
    for step in result.applied:
        _applied(step)
    if not result.created:
        console.print("The models match the migrations; no migration was created.")
        return
    for path in result.files:
        console.print(f"Created {path}")
    render_review.print_sql(console, result.sql)
    render_review.print_lint(console, result.lints)
    if create_only:
        console.print("Nothing was applied: review the file, its SQL and the lint, then "
                      "`shared-db migrate deploy`.")


def _dev_from_drift(target: Target, migrations_dir: Path, name: str) -> None:
    result = capture.capture(target, migrations_dir, name)
    if not result.created:
        console.print("The database matches its migrations' models; no migration was created.")
        return
    for path in result.files:
        console.print(f"Created {path}")
    render_review.print_sql(console, result.sql)
    labels = ", ".join(s.label for s in result.created)
    console.print(f"Recorded {labels} as applied in {target.connection.safe_url()} (nothing "
                  "was run there). Bring the models in line with it, or the next `migrate dev` "
                  "undoes it.", soft_wrap=True, markup=False)


@app.command("squash")
def squash_command(
        chain: Annotated[str, typer.Option("--chain", help="The service chain to squash.")],
        to: Annotated[str, typer.Option("--to", help="The newest migration the squash "
                                        "replaces (REV).")]) -> None:
    """Replace a chain's history up to --to by one migration for new databases."""
    current = settings()
    done = squash.squash(current.migrations_dir, chain, to)
    console.print(f"Created {done.path}, replacing {len(done.replaces)} migration(s) (moved to "
                  f"{done.path.parent / 'replaced'}). Databases at or past {done.step.revision} "
                  "go on as before; deploy it everywhere before committing the squash.",
                  soft_wrap=True, markup=False)


@app.command()
def down(to: Annotated[str | None, typer.Option(
        "--to", help="Roll back until this migration is the newest applied ('base': all).")]
        = None) -> None:
    """Roll back the newest migration, or every migration after --to."""
    current = settings()
    results = migrate.down(targets(current), current.migrations_dir, to, _reverted,
                           step_run(current))
    console.print(f"{sum(len(r.steps) for r in results)} migration(s) rolled back.")


@app.command()
def reset(force: Annotated[bool, typer.Option("--force", help="Do not ask.")] = False) -> None:
    """Drop everything, re-apply all migrations, and seed (asks first, or --force)."""
    current = settings()
    found = targets(current)
    names = ", ".join(t.connection.safe_url() for t in found)
    confirm(f"Drop every table and all data in {names}?", force)
    for target in found:
        migrate.drop_all(target)
        migrate.deploy(target, current.migrations_dir, _applied, run=step_run(current))
    report = seeding.run_seed(current, targets=found)
    console.print(f"Reset done; seeded {len(report.users_created)} user(s).")
