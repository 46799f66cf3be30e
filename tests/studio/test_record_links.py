"""Links to a record and the forms of a record post to that record whatever its key holds:
a config key such as ``a/../b`` is one path segment, which a browser does not resolve into
the page, or the delete, of key ``b``."""

from __future__ import annotations

import html
import re
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from shared_db.errors import ValidationError
from tests.conftest import Stores
from tests.studio.conftest import BASE, SyncStudio, csrf_of

pytestmark = pytest.mark.shared_only
KEYS = st.text(alphabet=st.sampled_from("ab./%?# \\é+&"), min_size=1, max_size=10)
DECOY = "decoy"


def _resolved(page_url: str, href: str) -> httpx.URL:
    """``href`` as a browser resolves it (RFC 3986: dot segments removed), sent unchanged."""
    parts = urlsplit(urljoin(page_url, html.unescape(href)))
    raw = parts.path + (f"?{parts.query}" if parts.query else "")
    return httpx.URL(BASE).copy_with(raw_path=raw.encode())


def test_generated_config_keys_are_reached_and_deleted_by_their_own_links(
        stores: Stores) -> None:
    studio = SyncStudio(stores)
    try:
        @settings(max_examples=30, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(KEYS)
        @example(f"x/../{DECOY}")  # posted from the browser as /w/config/decoy/delete
        def one(key: str) -> None:
            assume(key not in (".", "..", DECOY))  # a whole segment of dots: see the README
            try:
                studio.run(studio.db.config.set(key, {"k": key}))
            except ValidationError:
                assume(False)
            studio.run(studio.db.config.set(DECOY, 1))
            listing = studio.run(studio.client.get("/t/system_config",
                                                   params={"f.key.eq": key}))
            hrefs = re.findall(r'<td><a href="(/t/system_config/[^"]+)">', listing.text)
            assert len(hrefs) == 1, (key, listing.text)
            record_url = _resolved(f"{BASE}/t/system_config", hrefs[0])
            record = studio.run(studio.client.get(record_url))
            assert record.status_code == 200, (key, record_url)
            assert f'name="key" value="{html.escape(key)}"' in record.text, key
            action = re.search(r'<form method="post" action="([^"]+/delete)"', record.text)
            assert action is not None
            deleted = studio.run(studio.client.post(
                _resolved(str(record_url), action.group(1)),
                data={"csrf": csrf_of(record.text)}))
            assert deleted.status_code == 303, (key, action.group(1))
            assert studio.run(studio.db.config.get(key)) is None, key
            assert studio.run(studio.db.config.value(DECOY)) == 1, key
        one()
    finally:
        studio.close()
