"""Which databases a command acts on, and which migration chains each one carries."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shared_db.config import Settings
from shared_db.devserver import shared_url
from shared_db.errors import ConfigError
from shared_db.ops.versions import CHAINS
from shared_db.services import SERVICES
from shared_db.url import ConnectionSettings


@dataclass(frozen=True)
class Target:
    """One database and the chains applied to it, in order."""

    name: str
    connection: ConnectionSettings
    chains: tuple[str, ...]


def resolve_targets(settings: Settings, notice: Callable[[str], None] = lambda _: None, *,
                    offline: bool = False) -> list[Target]:
    """The databases of the configured topology.

    Shared: one database with every chain, ``links`` last. Per-service: each service's own
    database with that service's chain only. ``offline``: nothing will connect, so the
    embedded server is not started (``shared_url``).
    """
    if settings.topology == "per-service":
        return [
            Target(service, settings.connection(settings.service_urls[service],
                                                f"{service.upper()}_DATABASE_URL"), (service,))
            for service in SERVICES
        ]
    url = shared_url(settings, notice, offline=offline)
    return [Target("shared", settings.connection(url), CHAINS)]


SCRATCH_HELD = "it holds a session lock on a scratch database it makes, for its whole run"
"""Why a command that makes a scratch database needs a direct connection (``require_direct``)."""


def url_setting(target: Target) -> str:
    """The setting that gave ``target``'s URL."""
    return "DATABASE_URL" if target.name == "shared" else f"{target.name.upper()}_DATABASE_URL"


def require_direct(target: Target, command: str, why: str) -> None:
    """Refuse a ``target`` reached through PgBouncer for a ``command`` whose session state
    (``why``) spans transactions: transaction pooling runs each transaction on whichever server
    connection is free and leaves session state on it for other clients.

    Raises:
        ConfigError: ``target``'s URL has ``pgbouncer=true``; nothing was sent.
    """
    if target.connection.pgbouncer:
        raise ConfigError(url_setting(target), f"{command} needs a direct connection to the "
                          f"server, not one through PgBouncer (pgbouncer=true): {why}, which "
                          "transaction pooling would leave on a server connection other "
                          "clients get; give the server's own URL; nothing was changed")
