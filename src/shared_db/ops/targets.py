"""Which databases a command acts on, and which migration chains each one carries."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shared_db.config import Settings
from shared_db.devserver import shared_url
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
