"""The studio under test: its ASGI app on the topology's databases, through an httpx client
(no server, no network), signed in or not."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

import httpx
import pytest

from shared_db.client import Database
from shared_db.studio.app import create_app
from shared_db.studio.security import Guard
from tests.conftest import Stores

TOKEN = "test-token-" + "x" * 20
BASE = "http://127.0.0.1:5555"
T = TypeVar("T")


def client_for(stores: Stores, db: Database, *, read_only: bool = False,
               signed_in: bool = True) -> httpx.AsyncClient:
    guard = Guard.for_address("127.0.0.1", 5555, read_only, token=TOKEN)
    app = create_app(stores.settings(), guard, db)
    cookies = {guard.cookie: TOKEN} if signed_in else {}
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE,
                             cookies=cookies)


@pytest.fixture
async def studio(stores: Stores, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    """A signed-in client of a studio that may write."""
    async with client_for(stores, db) as client:
        yield client


def csrf_of(page: str) -> str:
    marker = 'name="csrf" value="'
    start = page.index(marker) + len(marker)
    return page[start:page.index('"', start)]


def hidden_of(page: str, action: str) -> dict[str, str]:
    """The hidden fields of the page's form posting to ``action`` (its CSRF token and, for
    a user's edit, the ``updated_at`` it showed); just the CSRF token when there is none."""
    found = re.search(rf'<form method="post" action="{re.escape(action)}"[^>]*>(.*?)</form>',
                      page, re.S)
    if found is None:
        return {"csrf": csrf_of(page)}
    return {name: html.unescape(value) for name, value in re.findall(
        r'<input type="hidden" name="(\w+)" value="([^"]*)">', found.group(1))}


class SyncStudio:
    """A signed-in studio client and its database on an event loop of the test's own, for
    hypothesis, whose ``given`` functions are not coroutines."""

    def __init__(self, stores: Stores) -> None:
        self.loop = asyncio.new_event_loop()
        self.db: Database = self.loop.run_until_complete(Database(stores.settings()).open())
        self.client = client_for(stores, self.db)

    def run(self, work: Awaitable[T]) -> T:
        return self.loop.run_until_complete(work)

    def close(self) -> None:
        self.run(self.client.aclose())
        self.run(self.db.close())
        self.loop.close()
