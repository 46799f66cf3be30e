"""The ``payment_reports`` view through a parameterised query, as typed rows."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared_db.client import Database
from shared_db.enums import UserRole
from shared_db.errors import ValidationError
from shared_db.records import PaymentReport
from tests.factories import make_user


async def test_reports_by_role(db: Database) -> None:
    buyer = await make_user(db, "buyer@example.com", name="B")
    idle = await make_user(db, "idle@example.com", name="I")
    seller = await make_user(db, "seller@example.com", name="S", role="VENDOR")
    for amount in ("10.00", "20.00", "30.50"):
        await db.payments.create(buyer.id, amount, type="payment")
    await db.payments.create(seller.id, "5.00", type="initiate")
    customers = await db.reports.payment_reports("CUSTOMER")
    assert [type(r) for r in customers] == [PaymentReport, PaymentReport]
    assert [(r.user_id, r.total_payments, r.total_amount) for r in customers] == [
        (buyer.id, 3, Decimal("60.50")), (idle.id, 0, None)]
    assert customers[0].avg_amount.quantize(Decimal("0.01")) == Decimal("20.17")
    assert customers[0].role is UserRole.CUSTOMER
    assert [r.email for r in await db.reports.payment_reports()] == [
        "buyer@example.com", "idle@example.com", "seller@example.com"]


@pytest.mark.parametrize("role", ["CUSTOMER' OR '1'='1", "admin", "", None.__class__.__name__])
async def test_role_filter_is_validated_and_parameterised(db: Database, role: str) -> None:
    with pytest.raises(ValidationError, match="role"):
        await db.reports.payment_reports(role)
