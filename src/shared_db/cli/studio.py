"""``shared-db studio``: browse and edit the data in a local web page."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from shared_db.cli.common import console, lazy, settings, targets

if TYPE_CHECKING:
    from shared_db.studio import server
else:
    server = lazy("shared_db.studio.server")


def studio(
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 5555,
    host: Annotated[str, typer.Option(help="Address to listen on; a non-loopback one needs "
                                           "--read-only.")] = "127.0.0.1",
    read_only: Annotated[bool, typer.Option("--read-only", help="Browse only; no form "
                                                                "writes.")] = False,
    writes: Annotated[bool, typer.Option("--writes", help="Allow edits even with "
                                                          "SHARED_DB_ENV=production.")] = False,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Do not open a "
                                                                  "browser.")] = False,
) -> None:
    """Serve the studio (tables, records, edits through the repositories, migrations, stats,
    doctor) until interrupted; prints `Studio: http://HOST:PORT/?token=...` first."""
    server.check_host(host, read_only)  # before any database is touched
    current = settings()
    targets(current)  # starts the embedded server when DATABASE_URL is unset, and says so
    server.serve(current, host, port, asked_read_only=read_only, asked_writes=writes,
                 open_browser=not no_browser,
                 say=lambda line: console.print(line, markup=False, soft_wrap=True))
