"""Who gets in and what may be posted: the token and its cookie, the Host header, CSRF and
Origin, read-only mode, the address the studio may listen on, escaping."""

from __future__ import annotations

import uuid
from urllib.parse import unquote, urlsplit

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared_db.cli import main
from shared_db.client import Database
from shared_db.config import load_settings
from shared_db.errors import ConfigError
from shared_db.studio.guard import _same_site
from shared_db.studio.server import check_host, read_only
from tests.conftest import Stores
from tests.factories import make_user
from tests.studio.conftest import BASE, TOKEN, client_for, csrf_of, hidden_of

pytestmark = pytest.mark.shared_only
PAGES = ["/", "/t/users", "/t/payments", "/ops/migrations", "/ops/stats", "/ops/doctor"]


async def test_every_page_needs_the_token_or_its_cookie(stores: Stores, db: Database) -> None:
    async with client_for(stores, db, signed_in=False) as anonymous:
        for path in PAGES:
            assert (await anonymous.get(path)).status_code == 401, path
        assert (await anonymous.get("/?token=wrong")).status_code == 401
        assert (await anonymous.post("/w/users/new", data={"csrf": "x"})).status_code == 401
        signed = await anonymous.get(f"/t/users?token={TOKEN}&sort=email")
        assert signed.status_code == 303
        assert signed.headers["location"] == "/t/users?sort=email"  # the token leaves the URL
        cookie = signed.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert (await anonymous.get("/t/users?sort=email")).status_code == 200
        assert (await anonymous.get("/static/studio.css")).status_code == 200


async def test_another_host_header_is_refused(studio: httpx.AsyncClient) -> None:
    refused = await studio.get("/", headers={"Host": "rebound.example:5555"})
    assert refused.status_code == 400
    assert "Host" in refused.text


async def test_writes_need_the_csrf_token_and_the_studio_s_origin(
        studio: httpx.AsyncClient, db: Database) -> None:
    user = await make_user(db, "csrf@example.com", name="Before")
    page = await studio.get(f"/t/users/{user.id}")
    form = {"name": "After", "role": "ADMIN", "email_verified": "true"}
    path = f"/w/users/{user.id}/edit"
    assert (await studio.post(path, data=form)).status_code == 403
    assert (await studio.post(path, data={**form, "csrf": "0" * 64})).status_code == 403
    foreign = await studio.post(path, data={**form, "csrf": csrf_of(page.text)},
                                headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 403
    unchanged = await db.users.get_one(user.id)
    assert (unchanged.name, unchanged.role.value) == ("Before", "CUSTOMER")
    assert [r.action for r in await db.audit.for_resource("user", user.id)] == ["user.created"]
    allowed = await studio.post(path, data={**form, **hidden_of(page.text, path)},
                                headers={"Origin": "http://127.0.0.1:5555"})
    assert allowed.status_code == 303


async def test_read_only_answers_every_write_with_405_and_shows_no_form(
        stores: Stores, db: Database) -> None:
    user = await make_user(db, "ro@example.com")
    async with client_for(stores, db, read_only=True) as client:
        page = await client.get(f"/t/users/{user.id}")
        assert page.status_code == 200
        assert "<form method=\"post\"" not in page.text and "read-only" in page.text
        for path in ["/w/users/new", f"/w/users/{user.id}/edit", f"/w/users/{user.id}/delete",
                     f"/w/users/{user.id}/restore", f"/w/payments/{uuid.uuid4()}/status",
                     "/w/config/set", "/w/config/k/delete"]:
            answer = await client.post(path, data={"csrf": "x", "name": "Changed"})
            assert answer.status_code == 405, path
            assert "read-only" in answer.text
    assert (await db.users.get_one(user.id)).name == "U"


async def test_get_on_a_write_route_is_405(studio: httpx.AsyncClient) -> None:
    assert (await studio.get("/w/users/new")).status_code == 405


async def test_values_are_escaped(studio: httpx.AsyncClient, db: Database) -> None:
    user = await make_user(db, "xss@example.com", name="<script>alert(1)</script>")
    for path in ("/t/users", f"/t/users/{user.id}"):
        text = (await studio.get(path)).text
        assert "<script>alert(1)" not in text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_production_is_read_only_unless_writes_are_asked_for() -> None:
    production = load_settings({"DATABASE_URL": "postgresql://u@h/d",
                                "SHARED_DB_ENV": "production"})
    development = load_settings({"DATABASE_URL": "postgresql://u@h/d"})
    assert read_only(production, False, False)
    assert not read_only(production, False, True)
    assert not read_only(development, False, False)
    assert read_only(development, True, False)
    with pytest.raises(ConfigError):
        read_only(development, True, True)


def test_a_non_loopback_address_serves_only_read_only() -> None:
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        check_host(host, False)
    with pytest.raises(ConfigError, match="--read-only"):
        check_host("0.0.0.0", False)
    check_host("0.0.0.0", True)
    assert main(["studio", "--host", "192.0.2.1", "--no-browser"]) == 2


async def test_signing_in_never_redirects_to_another_site(stores: Stores, db: Database) -> None:
    async with client_for(stores, db, signed_in=False) as anonymous:
        for path, kept in [("//evil.example/", "/evil.example/"),
                           ("/\\evil.example", "/evil.example"),
                           ("/t/system_config/a%20b", "/t/system_config/a%20b")]:
            raw = f"{path}?token={TOKEN}&sort=key".encode()
            answer = await anonymous.get(httpx.URL(BASE).copy_with(raw_path=raw))
            assert answer.status_code == 303, path
            assert answer.headers["location"] == f"{kept}?sort=key", path


@settings(max_examples=200, deadline=None, database=None)
@given(st.text(max_size=40))
def test_the_sign_in_redirect_stays_on_the_studio(path: str) -> None:
    location = _same_site("/" + path)
    assert location.startswith("/") and location[1:2] not in ("/", "\\")
    assert urlsplit(location).netloc == "" and urlsplit(location).scheme == ""
    assert unquote(location).lstrip("/\\") == path.lstrip("/\\")
