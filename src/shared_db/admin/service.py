"""Admin rules as service functions (the names the guide's services call)."""

from __future__ import annotations

import uuid
from typing import Any

from shared_db.admin.repository import AuditRepository, ConfigRepository
from shared_db.records import AuditRecord, ConfigRecord
from shared_db.repository import Source
from shared_db.typed import checked


@checked
async def record_audit_event(source: Source, action: str, *, resource_type: str | None = None,
                             resource_id: str | uuid.UUID | None = None,
                             details: dict[str, Any] | None = None,
                             user_id: uuid.UUID | None = None) -> AuditRecord:
    """The guide's 11.2 ``auditLog.create``; actor, IP and user agent come from ``acting_as``."""
    async with source.unit() as tx:
        return await AuditRepository(tx).record(action, resource_type=resource_type,
                                                resource_id=resource_id, details=details,
                                                user_id=user_id)


@checked
async def set_system_config(source: Source, key: str, value: Any, *,
                            description: str | None = None) -> ConfigRecord:
    """Create or replace a config value; audited as ``config.changed`` in the same transaction."""
    async with source.unit() as tx:
        return await ConfigRepository(tx).set(key, value, description=description)
