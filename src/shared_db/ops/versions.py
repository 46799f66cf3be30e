"""The migration chains' names and version tables: what ``status`` needs to know of the chains
without loading a model (``chains`` reads the models for which objects each chain owns)."""

from __future__ import annotations

from shared_db.services import SERVICES

LINKS = "links"
CHAINS: tuple[str, ...] = (*SERVICES, LINKS)


def version_table(chain: str) -> str:
    return f"alembic_version_{chain}"
