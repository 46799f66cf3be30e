"""The studio in a real browser: Playwright driving Debian's Chromium (``apt-get install
chromium``; launched from its path, nothing downloaded) against a uvicorn server, on one shared
database and on four per-service ones. Screenshots of every step go to
``test-artifacts/studio/<topology>/``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect, sync_playwright
from psycopg.conninfo import conninfo_to_dict

from shared_db.client import Database
from shared_db.config import Settings, load_settings
from shared_db.ops.scratch import drop_database
from shared_db.services import SERVICES
from shared_db.studio.app import create_app
from shared_db.studio.security import Guard
from shared_db.url import ConnectionSettings
from tests.conftest import _empty, _new_db
from tests.factories import PASSWORD_HASH

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "studio"
CHROMIUM = next((p for p in ("/usr/lib/chromium/chromium", shutil.which("chromium") or "")
                 if p and os.path.exists(p)), None)
if CHROMIUM is None and not os.environ.get("CI"):
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)",
                allow_module_level=True)


@dataclass(frozen=True)
class Live:
    topology: str
    url: str
    """The address with the token, as ``shared-db studio`` prints it."""
    origin: str

    def shot(self, page: Page, name: str) -> None:
        folder = ARTIFACTS / self.topology
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


async def _seed(settings: Settings) -> None:
    async with Database(settings) as db:
        for email, role in [("admin@test.com", "ADMIN"), ("vendor@test.com", "VENDOR"),
                            ("other@test.com", "CUSTOMER")]:
            await db.users.create(email=email, name=email.split("@")[0], role=role,
                                  password_hash=PASSWORD_HASH)
        customer = await db.users.create(email="customer@test.com", name="Customer",
                                         role="CUSTOMER", password_hash=PASSWORD_HASH)
        await db.profiles.create(customer.id, bio="seeded")
        await db.payments.create(customer.id, "42.00", type="payment",
                                 description="the payment to move")


def _databases(request: pytest.FixtureRequest, server: ConnectionSettings,
               topology: str) -> tuple[Settings, list[str]]:
    if topology == "shared":
        made = _new_db(server, request.getfixturevalue("template"))
        return load_settings({"DATABASE_URL": made.url}), [made.connection.database]
    templates = request.getfixturevalue("service_databases")
    urls = {}
    for service in SERVICES:
        made = _new_db(server, conninfo_to_dict(templates[service])["dbname"])
        _empty(made.url)
        urls[service] = made.url
    return load_settings({"SHARED_DB_TOPOLOGY": "per-service", **{
        f"{s.upper()}_DATABASE_URL": u for s, u in urls.items()}}), [
        str(conninfo_to_dict(u)["dbname"]) for u in urls.values()]


@pytest.fixture(scope="module", params=["shared", "per-service"])
def live(request: pytest.FixtureRequest, server: ConnectionSettings) -> Iterator[Live]:
    """A studio served by uvicorn on a free loopback port, on seeded databases."""
    settings, names = _databases(request, server, request.param)
    # Playwright's sync API keeps an event loop running in this thread: seed from another.
    with ThreadPoolExecutor(1) as other:
        other.submit(asyncio.run, _seed(settings)).result()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    guard = Guard.for_address("127.0.0.1", port, read_only=False)
    uv = uvicorn.Server(uvicorn.Config(create_app(settings, guard), host="127.0.0.1",
                                       port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert uv.started, "the studio did not start"
    origin = f"http://127.0.0.1:{port}"
    yield Live(request.param, f"{origin}/?token={guard.token}", origin)
    uv.should_exit = True
    thread.join(10)
    for name in names:
        drop_database(server, name)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, live: Live) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    opened = context.new_page()
    opened.goto(live.url)
    yield opened
    context.close()


def test_filter_open_follow_and_move_a_payment(page: Page, live: Live) -> None:
    expect(page).to_have_url(f"{live.origin}/")  # the token left the address bar
    expect(page.locator('td[data-table="users"]')).to_have_text("4")
    live.shot(page, "01-tables")
    page.locator("aside").get_by_role("link", name="users", exact=True).click()
    expect(page.locator("#rows tbody tr")).to_have_count(4)
    page.locator("details.filters summary").click()
    page.select_option('select[name="f.role.eq"]', "CUSTOMER")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(f"{live.origin}/t/users?sort=id&dir=asc&f.role.eq=CUSTOMER")
    expect(page.locator("#rows tbody tr")).to_have_count(2)
    live.shot(page, "02-customers")
    page.locator("#rows tbody tr", has_text="customer@test.com").locator("td a").first.click()
    expect(page.locator("#record")).to_contain_text("customer@test.com")
    expect(page.locator('[data-relation="payments"] .count')).to_have_text("1")
    expect(page.locator('[data-relation="user_profiles"] .count')).to_have_text("1")
    live.shot(page, "03-customer")
    page.locator('[data-relation="payments"] h2 a').click()
    expect(page.locator("#rows tbody tr")).to_have_count(1)
    page.locator("#rows tbody tr td a").first.click()
    expect(page.locator("#record")).to_contain_text("the payment to move")
    live.shot(page, "04-payment")
    page.select_option('#move-payment select[name="to"]', "initiated")
    page.get_by_role("button", name="Change status").click()
    expect(page.locator("p.done")).to_have_text("Status changed.")
    expect(page.locator("#record")).to_contain_text("initiated")
    audit = page.locator('[data-relation="audit_logs"]')
    expect(audit.locator(".count")).to_have_text("1")
    expect(audit).to_contain_text("payment.status_changed")
    expect(page.locator('[data-relation="payment_transactions"] .count')).to_have_text("1")
    live.shot(page, "05-moved")


def test_soft_delete_asks_first_and_the_toggle_shows_the_user(page: Page, live: Live) -> None:
    page.goto(f"{live.origin}/t/users?f.email.eq=vendor@test.com")
    page.locator("#rows tbody tr td a").first.click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Soft-delete").click()
    expect(page.locator("p.done")).to_have_text("Deleted.")
    page.goto(f"{live.origin}/t/users")
    expect(page.locator("#rows")).not_to_contain_text("vendor@test.com")
    page.locator("details.filters summary").click()
    page.check('input[name="deleted"]')
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#rows tr.deleted")).to_contain_text("vendor@test.com")
    live.shot(page, "06-soft-deleted")
    refused = page.goto(f"{live.origin}/t/users?sort=name")
    assert refused is not None and refused.status == 400
    expect(page.locator("p.refusal")).to_contain_text("indexed columns")


def test_operations_pages_draw_their_charts(page: Page, live: Live) -> None:
    page.get_by_role("link", name="Stats").click()
    expect(page.locator("svg.chart").first).to_be_visible()
    live.shot(page, "07-stats")
    page.get_by_role("link", name="Migrations").click()
    expect(page.locator("main")).to_contain_text("Up to date")
    page.get_by_role("link", name="Doctor").click()
    expect(page.locator("#checks")).to_contain_text("migrations")
    live.shot(page, "08-doctor")
