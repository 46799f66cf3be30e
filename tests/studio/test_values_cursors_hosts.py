"""Values written back into forms, cursors of any text, paths and sign-in links kept byte for
byte, the Host names a studio answers to, and operations pages that change nothing."""

from __future__ import annotations

import base64
import html
import json
import re
import uuid
from decimal import Decimal
from html.parser import HTMLParser

import httpx
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared_db.client import Database
from shared_db.studio.security import Guard
from tests.conftest import Stores
from tests.factories import make_user
from tests.studio.conftest import TOKEN, SyncStudio, client_for

pytestmark = pytest.mark.shared_only


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


def _tags(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(page)
    return parser.found


def _input_value(page: str, name: str) -> str:
    found = re.search(rf'<input name="{name}" value="([^"]*)"', page)
    assert found is not None, page
    return html.unescape(found.group(1))


async def test_a_config_value_is_written_back_into_its_form_as_escaped_json(
        studio: httpx.AsyncClient, db: Database) -> None:
    hostile = '"a onfocus=alert(1) autofocus b"'
    for key, value in [("probe.xss", hostile), ("probe.obj", {"q": '"><script>x</script>'}),
                       ("probe.text", "10"), ("probe.number", 10), ("probe.utf8", "café")]:
        await db.config.set(key, value)
        page = (await studio.get(f"/t/system_config/{key}")).text
        tags = _tags(page)
        assert not [t for t, attrs in tags if "onfocus" in attrs or "autofocus" in attrs]
        assert [attrs.get("src") for t, attrs in tags if t == "script"] == [
            "/static/studio.js"]  # the studio's own script, nothing written by a value
        assert json.loads(_input_value(page, "value")) == value  # re-saving keeps it as it is
    shown = (await studio.get("/t/system_config/probe.text")).text
    assert "<pre>&#34;10&#34;</pre>" in shown  # the string "10", not the number


_JSON = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6)
                     | st.text(max_size=30),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                     max_leaves=8)


def test_any_json_value_survives_its_form(stores: Stores) -> None:
    studio = SyncStudio(stores)
    try:
        @settings(max_examples=40, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(_JSON)
        def one(value: object) -> None:
            if "\\u0000" in json.dumps(value):
                return  # refused by the repository: PostgreSQL's jsonb holds no NUL
            studio.run(studio.db.config.set("probe.any", value))
            page = studio.run(studio.client.get("/t/system_config/probe.any")).text
            assert json.loads(_input_value(page, "value")) == value

        one()
    finally:
        studio.close()


def _cursor(values: list[object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


async def test_a_cursor_holding_a_lone_surrogate_is_a_bad_cursor(
        studio: httpx.AsyncClient) -> None:
    for path in ["/t/users?sort=email&after=" + _cursor(["\ud800", str(uuid.UUID(int=0))]),
                 "/t/system_config?sort=key&after=" + _cursor(["\udfff", "k"])]:
        refused = await studio.get(path)
        assert refused.status_code == 400, refused.text
        assert "after" in refused.text


async def test_pages_go_on_past_a_long_key_in_any_script(studio: httpx.AsyncClient,
                                                         db: Database) -> None:
    long_key = "k49" + "\U0001f600" * 197  # 200 characters, 4 bytes each in UTF-8
    keys = [f"k{n:02d}" for n in range(49)] + [long_key, "k50", "k51"]
    for key in keys:
        await db.config.set(key, 1)
    first = (await studio.get("/t/system_config?sort=key")).text
    following = re.search(r'id="next" href="(\?[^"]*)"', first)
    assert following is not None
    second = await studio.get("/t/system_config" + html.unescape(following.group(1)))
    assert second.status_code == 200, second.text
    assert ">k50<" in second.text and ">k51<" in second.text


async def test_an_idempotency_key_of_any_allowed_length_opens(studio: httpx.AsyncClient,
                                                              db: Database) -> None:
    user = await make_user(db, "longkey@example.com")
    key = "k" * 255
    await db.payments.create(user.id, Decimal("1.00"), type="payment", idempotency_key=key)
    found = await studio.get(f"/t/payments_idempotency_keys/{key}")
    assert found.status_code == 200, found.text


async def test_paths_and_keys_are_read_strictly(studio: httpx.AsyncClient) -> None:
    for path in ["/t/system_config/%FF", "/t/system_config/a%C3"]:
        refused = await studio.get(path)
        assert refused.status_code == 400 and "UTF-8" in refused.text, path
    nul = await studio.get("/t/system_config/%00")
    assert nul.status_code == 400 and "key: contains a NUL" in nul.text
    for path in ["/", "/ops/doctor", "/t/users/" + str(uuid.uuid4())]:
        refused = await studio.get(path + "?x=1")
        assert refused.status_code == 400 and "unknown parameter" in refused.text, path


async def test_signing_in_keeps_the_rest_of_the_query_byte_for_byte(
        stores: Stores, db: Database) -> None:
    async with client_for(stores, db, signed_in=False) as anonymous:
        signed = await anonymous.get(f"/t/users?token={TOKEN}&f.email.eq=%FF&sort=email")
        assert signed.status_code == 303
        assert signed.headers["location"] == "/t/users?f.email.eq=%FF&sort=email"
        refused = await anonymous.get(signed.headers["location"])  # signed in by the cookie
        assert refused.status_code == 400 and "UTF-8" in refused.text  # still refused
        twice = await anonymous.get(f"/?token={TOKEN}&token={TOKEN}")
        assert twice.status_code == 400 and "token" in twice.text


def test_the_host_names_a_studio_answers_to() -> None:
    local = Guard.for_address("127.0.0.1", 5601, read_only=False)
    assert local.accepts_host("LOCALHOST:5601") and local.accepts_host("127.0.0.1:5601")
    assert not local.accepts_host("rebound.example:5601")
    assert not local.accepts_host(None)
    for wildcard in ("0.0.0.0", "::"):
        everywhere = Guard.for_address(wildcard, 5604, read_only=True)
        assert everywhere.accepts_host("192.0.2.2:5604")
        assert everywhere.valid_origin("http://192.0.2.2:5604", "192.0.2.2:5604")
        assert not everywhere.valid_origin("http://evil.example", "192.0.2.2:5604")
    assert local.cookie != Guard.for_address("127.0.0.1", 5607, read_only=False).cookie


async def test_the_stats_page_installs_nothing(stores: Stores, db: Database) -> None:
    with psycopg.connect(stores.url("admin"), autocommit=True) as conn:
        preloaded = "pg_stat_statements" in str(
            conn.execute("SHOW shared_preload_libraries").fetchone())
        if not preloaded:
            pytest.skip("pg_stat_statements is not preloaded on this server")
        conn.execute("DROP EXTENSION IF EXISTS pg_stat_statements")
        async with client_for(stores, db, read_only=True) as studio:
            page = await studio.get("/ops/stats")
        assert page.status_code == 200
        assert "not installed in this database" in page.text
        assert conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'"
                            ).fetchone() is None
