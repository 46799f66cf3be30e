"""Query strings and forms read strictly: bytes that are not UTF-8, a name given twice, a field
the form does not take, another encoding or an oversized body are refused naming the field,
and nothing is written; a number filter the database cannot hold is refused before any SQL."""

from __future__ import annotations

import re
from decimal import Decimal
from urllib.parse import quote_from_bytes

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared_db.client import Database
from shared_db.studio.forms import FORM_TYPE, MAX_BODY
from tests.conftest import Stores
from tests.factories import make_user
from tests.studio.conftest import SyncStudio, csrf_of

pytestmark = pytest.mark.shared_only
FORM = {"content-type": FORM_TYPE}


def _refusal(answer: httpx.Response) -> str:
    found = re.search(r'role="alert">(.*?)</p>', answer.text, re.S)
    assert found is not None, answer.text
    return re.sub(r"<[^>]+>", "", found.group(1)).replace("&#39;", "'")


def test_bytes_that_are_not_utf8_are_refused_by_name_and_write_nothing(
        stores: Stores) -> None:
    studio = SyncStudio(stores)
    try:
        csrf = csrf_of(studio.run(studio.client.get("/t/users")).text).encode()

        @settings(max_examples=40, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(st.binary(min_size=1, max_size=30))
        def one(raw: bytes) -> None:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = None
            encoded = quote_from_bytes(raw, safe="").encode()
            shown = studio.run(studio.client.get(
                "/t/users?f.email.contains=" + encoded.decode()))
            if text is None:
                assert shown.status_code == 400, raw
                assert _refusal(shown).startswith("parameter 'f.email.contains': is not UTF-8")
            else:
                assert shown.status_code in (200, 400), (raw, shown.text)
            before = stores.digest()
            body = b"csrf=" + csrf + b"&key=generated&value=" + encoded
            posted = studio.run(studio.client.post("/w/config/set", content=body,
                                                   headers=FORM))
            if text is None:
                assert posted.status_code == 400, raw
                assert _refusal(posted).startswith("field 'value': is not UTF-8")
            if posted.status_code != 303:
                assert stores.digest() == before, raw
            else:
                assert studio.run(studio.db.config.value("generated")) is not None
        one()
    finally:
        studio.close()


async def test_a_user_is_not_created_with_an_email_nobody_typed(
        studio: httpx.AsyncClient, stores: Stores) -> None:
    csrf = csrf_of((await studio.get("/t/users")).text)
    before = stores.digest()
    body = (f"csrf={csrf}&email=%ff%fe@example.com&name=N&role=CUSTOMER"
            "&password=a-long-password&email_verified=false").encode()
    answer = await studio.post("/w/users/new", content=body, headers=FORM)
    assert answer.status_code == 400
    assert "field 'email': is not UTF-8" in _refusal(answer)
    assert stores.digest() == before


async def test_repeated_and_unknown_fields_and_other_bodies_are_refused(
        studio: httpx.AsyncClient, db: Database, stores: Stores) -> None:
    user = await make_user(db, "strict@example.com")
    page = (await studio.get(f"/t/users/{user.id}")).text
    csrf = csrf_of(page)
    new = {"email": "new@example.com", "name": "N", "role": "CUSTOMER",
           "password": "a-long-password", "email_verified": "false"}
    before = stores.digest()
    cases: list[tuple[dict[str, object], int, str]] = [
        ({"data": {"csrf": csrf, **new, "id": str(user.id)}}, 400, "'id': unknown field"),
        ({"data": {"csrf": csrf, **new, "password_hash": "x"}}, 400,
         "'password_hash': unknown field"),
        ({"data": {"csrf": csrf, **new, "role": ["CUSTOMER", "ADMIN"]}}, 400,
         "'role': each field may be given once"),
        ({"files": {"email": ("e.txt", b"x")}, "data": {"csrf": csrf}}, 415, "Content-Type"),
        ({"json": {"csrf": csrf, **new}}, 415, "Content-Type"),
        ({"content": b"csrf=" + csrf.encode() + b"&name=" + b"x" * MAX_BODY,
          "headers": FORM}, 413, "larger than"),
        ({"content": b"&".join([b"csrf=" + csrf.encode()] + [b"f%d=1" % n
                                                             for n in range(30)]),
          "headers": FORM}, 400, "more than 20 fields"),
    ]
    for request, status, message in cases:
        answer = await studio.post("/w/users/new", **request)  # type: ignore[arg-type]
        assert answer.status_code == status, (request, answer.text)
        assert message in answer.text.replace("&#39;", "'"), answer.text
    assert stores.digest() == before
    assert await db.users.get_by_email("new@example.com") is None
    # a field of another form is unknown here too: the delete form takes only the token
    extra = await studio.post(f"/w/users/{user.id}/delete", data={"csrf": csrf, "name": "x"})
    assert extra.status_code == 400 and await db.users.get(user.id) is not None


async def test_a_number_filter_the_database_cannot_hold_is_refused_by_name(
        studio: httpx.AsyncClient) -> None:
    for value in ("1e-100000", "0." + "0" * 40 + "1", "1e15", "-Infinity"):
        answer = await studio.get(f"/t/payments?f.amount.gte={value}")
        assert answer.status_code == 400, value
        assert _refusal(answer).startswith("f.amount.gte: must be a finite number"), value
    for value in ("1e-30", "0.5", "-0", "1" + "0" * 14 + ".000000000000000000000"):
        assert (await studio.get(f"/t/payments?f.amount.lte={value}")).status_code == 200


def test_generated_number_filters_are_answered_or_refused_by_name(stores: Stores) -> None:
    studio = SyncStudio(stores)
    try:
        @settings(max_examples=60, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(st.one_of(st.decimals().map(str), st.floats().map(repr),
                         st.integers().map(str), st.text(max_size=20)),
               st.sampled_from(["gte", "lte"]))
        def one(value: str, op: str) -> None:
            answer = studio.run(studio.client.get("/t/payments", params={
                f"f.amount.{op}": value}))
            if answer.status_code == 200:
                assert value == "" or Decimal(value).is_finite()
                return
            assert answer.status_code == 400, (value, answer.text)
            assert _refusal(answer).startswith(f"f.amount.{op}: "), (value, answer.text)
        one()
    finally:
        studio.close()
