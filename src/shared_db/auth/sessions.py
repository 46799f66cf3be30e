"""Devices and sessions (the guide's POC-3 session management)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import (
    Interval,
    Text,
    Uuid,
    bindparam,
    delete,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert

from shared_db import validation as check
from shared_db.auth.models import Device, RefreshToken, User, UserSession
from shared_db.errors import ConflictError, NotFoundError
from shared_db.records import DeviceRecord, SessionRecord
from shared_db.repository import Repository
from shared_db.sql import Query, columns

_DEVICE = columns(DeviceRecord, Device)
_SESSION = columns(SessionRecord, UserSession)
DEFAULT_SESSION_TTL = timedelta(days=30)
MAX_SESSION_TTL = timedelta(days=3650)

_register = insert(Device).from_select(
    ["id", "user_id", "device_id", "device_name", "device_type"],
    select(func.gen_random_uuid(), User.id, bindparam("device_id", type_=Text),
           bindparam("device_name", type_=Text), bindparam("device_type", type_=Text),
           ).where(User.id == bindparam("user_id"), User.deleted_at.is_(None)))
REGISTER = Query.build("devices.register", _register.on_conflict_do_update(
    index_elements=[Device.device_id],
    set_={"last_active_at": func.now(),
          "device_name": func.coalesce(_register.excluded.device_name, Device.device_name),
          "device_type": func.coalesce(_register.excluded.device_type, Device.device_type)},
    where=Device.user_id == _register.excluded.user_id,
).returning(*_DEVICE))
TOUCH = Query.build("devices.touch", update(Device).where(Device.id == bindparam("id")).values(
    last_active_at=func.now()).returning(*_DEVICE))
DEVICES_OF = Query.build("devices.of_user", select(*_DEVICE).where(
    Device.user_id == bindparam("user_id")).order_by(Device.last_active_at.desc()))
DEVICE_OWNER = Query.build("devices.owner", select(Device.user_id).where(
    Device.device_id == bindparam("device_id")))

OPEN = Query.build("sessions.open", insert(UserSession).from_select(
    ["id", "user_id", "device_id", "refresh_token_id", "ip_address", "user_agent", "expires_at"],
    select(func.gen_random_uuid(), Device.user_id, Device.id,
           bindparam("refresh_token_id", type_=Uuid), bindparam("ip_address", type_=Text),
           bindparam("user_agent", type_=Text), func.now() + bindparam("ttl", type_=Interval),
           ).join(User, User.id == Device.user_id).where(
        Device.id == bindparam("device"), Device.user_id == bindparam("user_id"),
        User.deleted_at.is_(None),
        # A session may name only its own user's refresh token: another user's would let a
        # rotation of that token move this session, and revoking it end this one.
        or_(bindparam("refresh_token_id", type_=Uuid).is_(None), exists().where(
            RefreshToken.id == bindparam("refresh_token_id", type_=Uuid),
            RefreshToken.user_id == Device.user_id))),
).returning(*_SESSION))
ACTIVE = Query.build("sessions.active", select(*_SESSION).join(
    User, User.id == UserSession.user_id).where(
    UserSession.user_id == bindparam("user_id"), UserSession.expires_at > func.now(),
    User.deleted_at.is_(None)).order_by(UserSession.created_at.desc()))
END = Query.build("sessions.end", delete(UserSession).where(UserSession.id == bindparam("id")))
END_OTHERS = Query.build("sessions.end_others", delete(UserSession).where(
    UserSession.user_id == bindparam("user_id"), UserSession.id != bindparam("keep")))
PURGE = Query.build("sessions.purge", delete(UserSession).where(
    UserSession.expires_at <= func.now()))


class DeviceRepository(Repository):
    service = "auth"

    async def register(self, user_id: uuid.UUID, device_id: str, *,
                       device_name: str | None = None, device_type: str | None = None,
                       ) -> DeviceRecord:
        """Register the client's device, or touch it (``last_active_at``) when known.

        Raises:
            ConflictError: the device id is registered to another user.
            NotFoundError: the user does not exist or is deleted.
        """
        params = {"user_id": user_id,
                  "device_id": check.text("device_id", device_id, max_length=200),
                  "device_name": check.optional_text("device_name", device_name, max_length=200),
                  "device_type": check.optional_text("device_type", device_type, max_length=50)}
        async with self._write() as ex:
            device = await ex.one(REGISTER, params, DeviceRecord)
            if device is not None:
                return device
            owner = await ex.scalar(DEVICE_OWNER, {"device_id": device_id})
        if owner is not None and owner != user_id:
            raise ConflictError(f"device_id {device_id!r} is registered to another user")
        raise NotFoundError(f"user {user_id} does not exist or is deleted")

    async def touch(self, device: uuid.UUID) -> DeviceRecord:
        """Mark the device active now."""
        async with self._write() as ex:
            found = await ex.one(TOUCH, {"id": device}, DeviceRecord)
        if found is None:
            raise NotFoundError(f"device {device} does not exist")
        return found

    async def list_for_user(self, user_id: uuid.UUID) -> list[DeviceRecord]:
        async with self._read() as ex:
            return await ex.all(DEVICES_OF, {"user_id": user_id}, DeviceRecord)


class SessionRepository(Repository):
    service = "auth"

    async def open(self, user_id: uuid.UUID, device: uuid.UUID, *,
                   refresh_token_id: uuid.UUID | None = None,
                   ttl: timedelta = DEFAULT_SESSION_TTL, ip_address: str | None = None,
                   user_agent: str | None = None) -> SessionRecord:
        """A session of ``user_id`` on their ``device`` (the devices row's id).

        Raises:
            NotFoundError: no such device of this user, the user is deleted, or
                ``refresh_token_id`` is not a token of this user.
        """
        params = {"user_id": user_id, "device": device, "refresh_token_id": refresh_token_id,
                  "ip_address": check.optional_text("ip_address", ip_address, max_length=100),
                  "user_agent": check.optional_text("user_agent", user_agent, max_length=1000),
                  "ttl": check.positive_duration("ttl", ttl, maximum=MAX_SESSION_TTL)}
        async with self._write() as ex:
            session = await ex.one(OPEN, params, SessionRecord)
        if session is None:
            token = ("" if refresh_token_id is None
                     else f", or refresh token {refresh_token_id} is not theirs")
            raise NotFoundError(f"device {device} of user {user_id} does not exist{token}")
        return session

    async def active(self, user_id: uuid.UUID) -> list[SessionRecord]:
        """Unexpired sessions, newest first; none for a soft-deleted user. Read on the
        primary: a lagging replica would still list a session just ended (log out
        everywhere)."""
        async with self._fresh() as ex:
            return await ex.all(ACTIVE, {"user_id": user_id}, SessionRecord)

    async def end(self, session_id: uuid.UUID) -> bool:
        async with self._write() as ex:
            return await ex.execute(END, {"id": session_id}) > 0

    async def end_others(self, user_id: uuid.UUID, keep: uuid.UUID) -> int:
        """End every session of ``user_id`` but ``keep`` (log out other devices)."""
        async with self._write() as ex:
            return await ex.execute(END_OTHERS, {"user_id": user_id, "keep": keep})

    async def purge_expired(self) -> int:
        """Delete expired sessions (uses ``sessions_expires_at_idx``)."""
        async with self._write() as ex:
            return await ex.execute(PURGE, {})
