"""The audit trail (guide 11.2) and system configuration."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import bindparam, delete, func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from shared_db import validation as check
from shared_db.admin.models import AuditLog, SystemConfig
from shared_db.errors import NotFoundError
from shared_db.records import AuditRecord, ConfigRecord
from shared_db.repository import Repository
from shared_db.sql import Query, columns

_AUDIT = columns(AuditRecord, AuditLog)
_CONFIG = columns(ConfigRecord, SystemConfig)

# created_at as users.create's (auth.statements.AUDITED): the time the row is written, so rows
# of changes that waited on each other's locks list in the order the changes took effect.
_INSERT = insert(AuditLog).values(
    id=func.gen_random_uuid(), created_at=func.clock_timestamp(), user_id=bindparam("user_id"),
    action=bindparam("action"),
    resource_type=bindparam("resource_type"), resource_id=bindparam("resource_id"),
    details=bindparam("details"), ip_address=bindparam("ip_address"),
    user_agent=bindparam("user_agent"))
RECORD = Query.build("audit.record", _INSERT.returning(*_AUDIT))
# What other services write: without RETURNING, so their roles need INSERT only (ops/roles).
APPEND = Query.build("audit.append", _INSERT.inline())
FOR_RESOURCE = Query.build("audit.for_resource", select(*_AUDIT).where(
    AuditLog.resource_type == bindparam("resource_type"),
    AuditLog.resource_id == bindparam("resource_id"),
).order_by(AuditLog.created_at, AuditLog.id))
# Rows of one transaction share created_at: the id orders them, so the newest ``limit`` rows
# are always the first ``limit`` of a longer answer (a top-N sort of ties is not stable).
BY_USER = Query.build("audit.by_user", select(*_AUDIT).where(
    AuditLog.user_id == bindparam("user_id")).order_by(
    AuditLog.created_at.desc(), AuditLog.id.desc()).limit(bindparam("limit")))
BY_ACTION_SINCE = Query.build("audit.by_action", select(*_AUDIT).where(
    AuditLog.action == bindparam("action"), AuditLog.created_at >= bindparam("since"),
).order_by(AuditLog.created_at, AuditLog.id))

CONFIG_GET = Query.build("config.get", select(*_CONFIG).where(SystemConfig.key == bindparam("key")))
CONFIG_LIST = Query.build("config.list", select(*_CONFIG).order_by(SystemConfig.key))
_upsert = pg_insert(SystemConfig).values(
    key=bindparam("key"), value=bindparam("value"), description=bindparam("description"),
    updated_by=bindparam("updated_by"))
CONFIG_SET = Query.build("config.set", _upsert.on_conflict_do_update(
    index_elements=[SystemConfig.key],
    set_={"value": _upsert.excluded.value,
          "description": func.coalesce(_upsert.excluded.description, SystemConfig.description),
          "updated_by": _upsert.excluded.updated_by, "updated_at": func.now()},
).returning(*_CONFIG))
# Named as the method that sends it, as CONFIG_SET is: both are config.set's write.
CONFIG_ADD = Query.build("config.set", _upsert.on_conflict_do_nothing(
    index_elements=[SystemConfig.key]).returning(*_CONFIG))
CONFIG_OLD = Query.build("config.old_value", select(*_CONFIG).where(
    SystemConfig.key == bindparam("key")).with_for_update())
CONFIG_DELETE = Query.build("config.delete", delete(SystemConfig).where(
    SystemConfig.key == bindparam("key")))


class AuditRepository(Repository):
    """Append-only audit rows; the actor, IP and user agent come from the caller's context."""

    service = "admin"

    async def record(self, action: str, *, resource_type: str | None = None,
                     resource_id: str | uuid.UUID | None = None,
                     details: dict[str, Any] | None = None,
                     user_id: uuid.UUID | None = None) -> AuditRecord:
        """Record one action (e.g. ``payment.created``); ``user_id`` defaults to the actor."""
        params = self._params(action, resource_type=resource_type, resource_id=resource_id,
                             details=details, user_id=user_id)
        async with self._write() as ex:
            record = await ex.one(RECORD, params, AuditRecord)
        assert record is not None
        return record

    async def append(self, action: str, *, resource_type: str | None = None,
                     resource_id: str | uuid.UUID | None = None,
                     details: dict[str, Any] | None = None,
                     user_id: uuid.UUID | None = None) -> None:
        """``record`` without reading the row back: what the other services' writes use."""
        params = self._params(action, resource_type=resource_type, resource_id=resource_id,
                             details=details, user_id=user_id)
        async with self._write() as ex:
            await ex.execute(APPEND, params)

    async def _change(self, action: str, key: str, details: dict[str, Any]) -> None:
        """The audit row of a config change. Its details hold values already checked as the
        call's own ``value`` (or read back from the table), so they are not checked again
        against the limits of a caller's ``details``: old and new together may pass them, and
        the call must not fail naming a parameter it does not have."""
        params = self._params(action, resource_type="system_config", resource_id=key)
        async with self._write() as ex:
            await ex.execute(APPEND, {**params, "details": Jsonb(details)})

    def _params(self, action: str, *, resource_type: str | None = None,
               resource_id: str | uuid.UUID | None = None,
               details: dict[str, Any] | None = None,
               user_id: uuid.UUID | None = None) -> dict[str, Any]:
        """The validated parameters of ``RECORD`` for one action (``record`` without the I/O)."""
        actor = self._source.actor()
        return {
            "user_id": user_id or actor.actor_id,
            "action": check.text("action", action, max_length=200),
            "resource_type": check.optional_text("resource_type", resource_type, max_length=200),
            "resource_id": None if resource_id is None else check.text(
                "resource_id", str(resource_id), max_length=200),
            "details": None if details is None else Jsonb(check.json_object("details", details)),
            "ip_address": check.optional_text("ip_address", actor.ip_address, max_length=100),
            "user_agent": check.optional_text("user_agent", actor.user_agent, max_length=1000),
        }

    async def for_resource(self, resource_type: str, resource_id: str | uuid.UUID,
                           ) -> list[AuditRecord]:
        """Every row about one resource, oldest first."""
        async with self._read() as ex:
            return await ex.all(FOR_RESOURCE, {"resource_type": resource_type,
                                               "resource_id": str(resource_id)}, AuditRecord)

    async def by_user(self, user_id: uuid.UUID, limit: int = 100) -> list[AuditRecord]:
        """The newest rows recorded for ``user_id``."""
        check.positive_int("limit", limit, maximum=1000)
        async with self._read() as ex:
            return await ex.all(BY_USER, {"user_id": user_id, "limit": limit}, AuditRecord)

    async def by_action(self, action: str, since: datetime) -> list[AuditRecord]:
        check.text("action", action, max_length=200)
        async with self._read() as ex:
            return await ex.all(BY_ACTION_SINCE, {"action": action, "since": since}, AuditRecord)


class ConfigRepository(Repository):
    """``system_config``: JSON values by key; every change is audited in the same transaction."""

    service = "admin"

    async def get(self, key: str) -> ConfigRecord | None:
        check.text("key", key, max_length=200)
        async with self._read() as ex:
            return await ex.one(CONFIG_GET, {"key": key}, ConfigRecord)

    async def value(self, key: str, default: Any = None) -> Any:
        found = await self.get(key)
        return default if found is None else found.value

    async def list(self) -> list[ConfigRecord]:
        async with self._read() as ex:
            return await ex.all(CONFIG_LIST, {}, ConfigRecord)

    async def set(self, key: str, value: Any, *, description: str | None = None,
                  updated_by: str | None = None) -> ConfigRecord:
        """Create or replace ``key``; ``updated_by`` defaults to the acting user's id."""
        actor = self._source.actor()
        by = updated_by if updated_by is not None else (
            str(actor.actor_id) if actor.actor_id else None)
        params = {
            "key": check.text("key", key, max_length=200),
            "value": Jsonb(checked := check.json_value("value", value)),
            "description": check.optional_text("description", description),
            "updated_by": check.optional_text("updated_by", by, max_length=200),
        }
        async with self._source.unit() as tx:
            async with tx.executor(self.service) as ex:
                found = await ex.one(CONFIG_OLD, {"key": params["key"]}, ConfigRecord)
                if found is not None and _unchanged(found, checked, description, by):
                    return found  # as users.update: nothing to change, nothing written
                record = None
                if found is None:
                    # A new key: FOR UPDATE locked nothing, so a concurrent set of the same key
                    # may insert it first. Inserting without overwriting tells; then the row it
                    # committed is locked and read, and its value is the old one audited.
                    record = await ex.one(CONFIG_ADD, params, ConfigRecord)
                    if record is None:
                        found = await ex.one(CONFIG_OLD, {"key": params["key"]}, ConfigRecord)
                if record is None:
                    record = await ex.one(CONFIG_SET, params, ConfigRecord)
            assert record is not None
            old = None if found is None else found.value
            await AuditRepository(tx)._change("config.changed", key, {"old": old, "new": checked})
        return record

    async def delete(self, key: str) -> None:
        """Remove ``key``. Raises NotFoundError when it does not exist."""
        check.text("key", key, max_length=200)
        async with self._source.unit() as tx:
            async with tx.executor(self.service) as ex:
                old = await ex.one(CONFIG_OLD, {"key": key}, ConfigRecord)
                if old is None or not await ex.execute(CONFIG_DELETE, {"key": key}):
                    raise NotFoundError(f"system_config {key!r} does not exist")
            await AuditRepository(tx)._change("config.deleted", key, {"old": old.value})


def _unchanged(stored: ConfigRecord, value: Any, description: str | None,
               updated_by: str | None) -> bool:
    """Would ``set`` leave the row as it is? Values compare as JSON text, so ``True`` is not
    ``1`` (Python's ``==`` says it is; jsonb does not), and a description of None keeps the
    stored one."""
    return (json.dumps(stored.value, sort_keys=True, default=repr)
            == json.dumps(value, sort_keys=True, default=repr)
            and description in (None, stored.description) and updated_by == stored.updated_by)
