"""``shared-db metrics --port P``: serve the Prometheus metrics until interrupted."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Annotated

import typer

from shared_db.cli.common import console, lazy, settings

if TYPE_CHECKING:
    from shared_db.ops import metrics_server
else:
    metrics_server = lazy("shared_db.ops.metrics_server")


def metrics(port: Annotated[int, typer.Option(help="Port to listen on (0: any free one).",
                                              min=0, max=65535)],
            host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
            ) -> None:
    """Serve a client's Prometheus metrics and pg_stat_statements by method, for a look."""
    def announce(url: str) -> None:
        console.print(f"Metrics: {url}", soft_wrap=True)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(metrics_server.serve(settings(), host, port, announce))
