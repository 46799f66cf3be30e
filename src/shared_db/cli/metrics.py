"""``shared-db metrics --port P``: serve the Prometheus metrics until interrupted."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Annotated

import typer

from shared_db import interrupts
from shared_db.cli.common import console, lazy, settings, targets
from shared_db.errors import ConfigError, ValidationError

if TYPE_CHECKING:
    from shared_db.ops import metrics_server
else:
    metrics_server = lazy("shared_db.ops.metrics_server")


def metrics(port: Annotated[int, typer.Option(help="Port to listen on (0: any free one).",
                                              min=0, max=65535)],
            host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
            ) -> None:
    """Serve a client's Prometheus metrics and pg_stat_statements by method at /metrics (404
    elsewhere), for a look."""
    def announce(url: str) -> None:
        console.print(f"Metrics: {url}", soft_wrap=True)

    current = settings()
    targets(current)  # starts the embedded server when DATABASE_URL is unset, and says so
    try:
        with contextlib.suppress(KeyboardInterrupt):
            interrupts.run(metrics_server.serve(current, host, port, announce))
    except ValidationError as exc:
        if exc.field not in ("host", "port"):
            raise
        # the address cannot be listened on: a bad argument (exit 2)
        raise ConfigError(f"--{exc.field}", exc.rule) from None
