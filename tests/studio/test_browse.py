"""Browsing through the ASGI app: counts, keyset pages, sorting, typed filters, the
soft-deleted toggle, records with their related records, and 400 for every bad query."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from shared_db.auth.batch import NewUser
from shared_db.client import Database
from shared_db.studio.query import PAGE
from tests.factories import PASSWORD_HASH, make_user

ROW_LINK = re.compile(r'<tr[^>]*><td><a href="/t/users/([0-9a-f-]{36})">')


def _ids(html: str) -> list[str]:
    return ROW_LINK.findall(html)


def _next(html: str) -> str | None:
    found = re.search(r'id="next" href="\?([^"]+)"', html)
    return None if found is None else "?" + found.group(1).replace("&amp;", "&")


async def _walk(studio: httpx.AsyncClient, query: str) -> list[str]:
    seen: list[str] = []
    path: str | None = query
    while path is not None:
        page = await studio.get(f"/t/users{path}")
        assert page.status_code == 200, page.text
        seen += _ids(page.text)
        path = _next(page.text)
    return seen


async def test_pages_walk_every_row_once_in_order_for_each_sort(
        studio: httpx.AsyncClient, db: Database) -> None:
    users = [NewUser(email=f"walk{n:03}@example.com", name=f"N{n % 7}", role="CUSTOMER",
                     password_hash=PASSWORD_HASH) for n in range(PAGE * 2 + 5)]
    await db.users.create_many(users)
    gone = await db.users.get_by_email("walk003@example.com")
    assert gone is not None
    await db.users.soft_delete(gone.id)
    everyone = await _walk(studio, "?deleted=1")
    assert len(everyone) == len(users) and everyone == sorted(everyone)
    live = await _walk(studio, "")
    assert len(live) == len(users) - 1 and gone.id.hex not in {i.replace("-", "") for i in live}
    assert sorted(await _walk(studio, "?sort=role&dir=desc")) == sorted(live)  # an enum
    by_email = await _walk(studio, "?sort=email&dir=desc")
    assert len(by_email) == len(users) - 1
    emails = {str(u.id): u.email for u in [await db.users.get_by_email(n.email)
                                          for n in users] if u is not None}
    assert [emails[i] for i in by_email] == sorted(emails[i] for i in by_email)[::-1]
    # deleted_at is nullable: NULLs come last ascending and first descending, and the pages
    # cross from the one set deleted_at into the NULLs without losing a row
    ascending = await _walk(studio, "?sort=deleted_at&deleted=1")
    descending = await _walk(studio, "?sort=deleted_at&dir=desc&deleted=1")
    assert ascending[0] == descending[-1] == str(gone.id)
    assert sorted(ascending) == sorted(descending) == everyone


async def test_typed_filters(studio: httpx.AsyncClient, db: Database) -> None:
    admin = await make_user(db, "boss@example.com", role="ADMIN", email_verified=True)
    customer = await make_user(db, "client@shop.example", role="CUSTOMER")
    await db.payments.create(customer.id, "5.00", type="payment")
    big = await db.payments.create(customer.id, "500.00", type="payment")

    async def shown(query: str, table: str = "users") -> set[str]:
        page = await studio.get(f"/t/{table}?{query}")
        assert page.status_code == 200, page.text
        return set(re.findall(rf'<td><a href="/t/{table}/([0-9a-f-]{{36}})">', page.text))

    assert await shown("f.role.eq=ADMIN") == {str(admin.id)}
    assert await shown("f.email.contains=shop") == {str(customer.id)}
    assert await shown("f.email.eq=boss@example.com") == {str(admin.id)}
    assert await shown("f.email_verified.eq=true") == {str(admin.id)}
    assert await shown("f.deleted_at.null=0") == set()
    assert await shown("f.email.contains=%25") == set()  # % is a character, not a wildcard
    today = datetime.now(UTC).date().isoformat()  # a date as the end: to the end of that day
    assert await shown(f"f.created_at.lte={today}&f.role.eq=") == {str(admin.id),
                                                                   str(customer.id)}
    assert await shown(f"f.created_at.gte={today}T23:59:59.999999%2B00:00") == set()
    assert await shown("f.amount.gte=100", "payments") == {str(big.id)}
    assert await shown(f"f.user_id.eq={customer.id}&f.status.eq=pending",
                       "payments") == await shown(f"f.user_id.eq={customer.id}", "payments")


BAD = [
    ("/t/nosuch", "unknown table"),
    ("/t/users?f.nosuch.eq=1", "no column"),
    ("/t/users?f.role.contains=A", "no operator"),
    ("/t/users?f.role.eq=KING", "one of the column"),
    ("/t/users?f.id.eq=not-a-uuid", "UUID"),
    ("/t/users?f.created_at.gte=yesterday", "ISO date"),
    ("/t/payments?f.amount.gte=NaN", "finite number"),
    ("/t/users?f.email_verified.eq=yes", "true or false"),
    ("/t/users?f.name.null=1", "no operator"),
    ("/t/users?f.deleted_at.null=maybe", "is null"),
    ("/t/users?f.email=x", "f.COLUMN.OPERATOR"),
    ("/t/users?after=%%%", "not a cursor"),
    ("/t/users?after=eyJ4IjoxfQ", "not a cursor"),
    ("/t/users?sort=email&after=WyJhIiwiYiJd", "not a cursor"),
    ("/t/users?sort=name", "indexed columns"),
    ("/t/users?sort=password_hash", "indexed columns"),
    ("/t/users?dir=sideways", "asc or desc"),
    ("/t/users?deleted=yes", "deleted"),
    ("/t/users?page=2", "unknown parameter"),
    ("/t/users?sort=id&sort=email", "once"),
    ("/t/users?f.email.eq=" + "x" * 600, "longer than"),
    ("/t/users?f.email.eq=a%00b", "NUL"),
    ("/t/users/not-a-uuid", "UUID"),
    ("/t/system_config/" + "k" * 600, "longer than"),
]


@pytest.mark.parametrize(("path", "message"), BAD)
@pytest.mark.shared_only
async def test_bad_query_strings_are_400_with_a_message(studio: httpx.AsyncClient, path: str,
                                                        message: str) -> None:
    answer = await studio.get(path)
    assert answer.status_code == 400, (path, answer.text)
    assert message in answer.text.replace("&#39;", "'")
    assert "Traceback" not in answer.text


async def test_a_missing_record_is_404(studio: httpx.AsyncClient) -> None:
    answer = await studio.get("/t/users/00000000-0000-0000-0000-000000000000")
    assert answer.status_code == 404


async def test_counts_and_a_user_with_every_related_record(studio: httpx.AsyncClient,
                                                           db: Database) -> None:
    user = await make_user(db, "related@example.com")
    await db.profiles.create(user.id, bio="hi")
    payment = await db.payments.create(user.id, "12.50", type="payment")
    device = await db.devices.register(user.id, "phone-1", device_name="Phone")
    issued = await db.tokens.issue(user.id)
    await db.sessions.open(user.id, device.id, refresh_token_id=issued.record.id)
    index = await studio.get("/")
    assert re.search(r'data-table="users">1<', index.text)
    assert re.search(r'data-table="payments">1<', index.text)
    page = (await studio.get(f"/t/users/{user.id}")).text
    counts = dict(re.findall(r'data-relation="(\w+)">\s*<h2>[^<]+<span class="count">(\d+)',
                             page))
    assert counts == {"user_profiles": "1", "payments": "1", "sessions": "1", "devices": "1",
                      "refresh_tokens": "1", "audit_logs": "1"}
    assert PASSWORD_HASH not in page and "password_hash" not in page
    assert f"/t/payments/{payment.id}" in page
    tokens = (await studio.get("/t/refresh_tokens")).text + (await studio.get(
        f"/t/refresh_tokens/{issued.record.id}")).text
    assert issued.token not in tokens and ">token<" not in tokens
    pay = (await studio.get(f"/t/payments/{payment.id}")).text
    assert f'href="/t/users/{user.id}"' in pay and 'id="move-payment"' in pay
    all_payments = parse_qs(urlsplit(re.findall(
        r'href="(/t/payments\?[^"]+)"', page)[0].replace("&amp;", "&")).query)
    assert all_payments == {"f.user_id.eq": [str(user.id)]}
