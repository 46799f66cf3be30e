"""The studio under test: its ASGI app on the topology's databases, through an httpx client
(no server, no network), signed in or not."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from shared_db.client import Database
from shared_db.studio.app import create_app
from shared_db.studio.security import COOKIE, Guard
from tests.conftest import Stores

TOKEN = "test-token-" + "x" * 20
BASE = "http://127.0.0.1:5555"


def client_for(stores: Stores, db: Database, *, read_only: bool = False,
               signed_in: bool = True) -> httpx.AsyncClient:
    guard = Guard.for_address("127.0.0.1", 5555, read_only, token=TOKEN)
    app = create_app(stores.settings(), guard, db)
    cookies = {COOKIE: TOKEN} if signed_in else {}
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
