"""SQLAlchemy 2 ORM, async, written the way a team would without shared-db."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select, text, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from shared_db.models import Payment, User, UserProfile

NEWEST = (Payment.created_at.desc(), Payment.id.desc())


class SqlAlchemyOrm:
    name = "sqlalchemy_orm"

    async def open(self, url: str, pool: int) -> None:
        self.engine = create_async_engine(url.replace("postgresql://", "postgresql+psycopg://"),
                                          pool_size=pool, max_overflow=0)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    async def close(self) -> None:
        await self.engine.dispose()

    def cursor(self, at: tuple[datetime, uuid.UUID]) -> Any:
        return at

    async def _scalars(self, query: Any) -> list[Any]:
        async with self.sessions() as session:
            return list((await session.scalars(query)).all())

    async def w1(self, user_id: uuid.UUID) -> Any:
        async with self.sessions() as session:
            return await session.get(User, user_id)

    async def w2(self, user_id: uuid.UUID) -> Any:
        async with self.sessions() as session:
            # No relationship crosses services: the profile is joined by its key column.
            user = (await session.execute(select(User, UserProfile).outerjoin(
                UserProfile, UserProfile.user_id == User.id).where(User.id == user_id))).one()
            payments = (await session.scalars(select(Payment).where(
                Payment.user_id == user_id).order_by(*NEWEST).limit(10))).all()
            return user, payments

    async def w3(self, user_id: uuid.UUID, cursor: Any) -> Any:
        return await self._scalars(select(Payment).where(
            Payment.user_id == user_id, tuple_(Payment.created_at, Payment.id) < tuple_(*cursor),
        ).order_by(*NEWEST).limit(21))

    async def w4_first(self) -> Any:
        return await self._scalars(select(Payment).order_by(*NEWEST).limit(21))

    async def w4_keyset(self, cursor: Any) -> Any:
        return await self._scalars(select(Payment).where(
            tuple_(Payment.created_at, Payment.id) < tuple_(*cursor)).order_by(*NEWEST).limit(21))

    async def w4_offset(self, offset: int) -> Any:
        return await self._scalars(select(Payment).order_by(*NEWEST).limit(20).offset(offset))

    async def w5(self, user_id: uuid.UUID) -> Any:
        async with self.sessions() as session, session.begin():
            payment = Payment(user_id=user_id, amount=Decimal("9.99"), status="pending",
                              type="payment")
            session.add(payment)
        return payment

    async def w6(self, email: str, password_hash: str) -> Any:
        async with self.sessions() as session, session.begin():
            user = User(email=email, password_hash=password_hash, name="New", role="CUSTOMER")
            session.add(user)
            await session.flush()
            profile = UserProfile(user_id=user.id, preferences={})
            session.add(profile)
        return user, profile

    async def w7(self, rows: list[tuple[str, str, str, str]]) -> int:
        values = [{"email": e, "password_hash": h, "name": n, "role": r} for e, h, n, r in rows]
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                insert(User).on_conflict_do_nothing().returning(User.id), values)
            return len(result.all())

    async def w8(self, role: str) -> Any:
        async with self.sessions() as session:
            rows = await session.execute(text(
                "SELECT * FROM payment_reports WHERE role = :role ORDER BY email"), {"role": role})
            return rows.all()

