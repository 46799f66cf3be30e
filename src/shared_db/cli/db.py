"""``shared-db db start | stop | url | seed | recover``: the embedded server, the seed data, and
the settling of two-phase transactions a crashed process left behind."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import typer

from shared_db import interrupts
from shared_db.cli.common import console, lazy, settings, targets
from shared_db.errors import ConfigError

if TYPE_CHECKING:
    from shared_db import client, devserver
    from shared_db.ops import seeding
else:
    client = lazy("shared_db.client")
    devserver = lazy("shared_db.devserver")
    seeding = lazy("shared_db.ops.seeding")

app = typer.Typer(no_args_is_help=True, help="The embedded server and the seed data.")


def _embedded_only() -> None:
    if settings().database_url:
        raise ConfigError("DATABASE_URL", "is set, so the embedded server is not used; "
                          "unset it to manage the embedded server")


@app.command()
def start() -> None:
    """Start the embedded PostgreSQL (or find it running) and print its URL."""
    _embedded_only()
    console.print(devserver.start(settings().home))


@app.command()
def stop() -> None:
    """Stop the embedded PostgreSQL; its data stays for the next start."""
    _embedded_only()
    stopped = devserver.stop(settings().home)
    console.print("Stopped." if stopped else "The embedded server was not running.")


@app.command()
def url() -> None:
    """Print the database URL commands use (password hidden), starting the embedded server."""
    from shared_db.url import ConnectionSettings

    current = settings()
    for target in targets(current):
        conn = target.connection
        # The URL as given: the parameters the pools take for themselves (pgbouncer, schema,
        # connection_limit, pool_timeout) are not libpq's, so the connection URL leaves them out.
        given = {**conn.url.query, **({"pgbouncer": "true"} if conn.pgbouncer else {}),
                 **({"schema": conn.schema} if conn.schema else {}),
                 "connection_limit": str(conn.pool_size), "pool_timeout": f"{conn.pool_timeout:g}"}
        shown = ConnectionSettings(conn.url.set(query=given), conn.pool_size, conn.pool_timeout,
                                   conn.pgbouncer, conn.schema, conn.libpq)
        console.print(shown.safe_url(), soft_wrap=True)


@app.command()
def seed() -> None:
    """Write the guide's seed users and profiles; a second run changes nothing."""
    current = settings()
    report = seeding.run_seed(current, targets=targets(current))
    if not report.changed:
        console.print(f"Nothing to seed: {len(report.users_existing)} user(s) and their "
                      "profiles exist already.")
        return
    console.print(f"Seeded {len(report.users_created)} user(s) "
                  f"({', '.join(report.users_created) or 'none new'}) and "
                  f"{report.profiles_created} profile(s).")


@app.command()
def recover(older_than: float = typer.Option(
        60.0, "--older-than", min=0.0,
        help="Only touch parts prepared at least this many seconds ago.")) -> None:
    """Finish or undo transactions across service databases whose process died at commit."""
    if not math.isfinite(older_than):  # click's range check lets inf through
        raise ConfigError("--older-than", f"must be a finite number of seconds, got {older_than}")
    current = settings()

    async def run() -> list[str]:
        async with client.Database(current) as db:
            return [f"{s.global_id}: {s.outcome} ({s.parts} part(s))"
                    for s in await db.recover(older_than)]

    lines = interrupts.run(run())
    console.print("\n".join(lines) if lines else "Nothing in doubt.")
