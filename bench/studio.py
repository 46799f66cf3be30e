"""The studio's table pages at depth: ``python -m bench.studio [--rows N] [--depth D] [--ops N]``.

A users table of ``--rows`` rows (default 60,000; loaded with one ``INSERT ... SELECT`` from
``generate_series``) in a database of its own, and the studio's app called through httpx's ASGI
transport (the whole request: the guard, query parsing, the keyset statement, rendering; no
socket). For two orders, the key (``id``) and an indexed column (``email`` descending), it times
the first page against the page at ``--depth`` (default 50,000), reached by the cursor a reader
would have followed there. The two take turns request by request, so drift on the machine hits
both alike; the report gives the median and p95 of each and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg

from shared_db import Database, devserver, load_settings
from shared_db.config import PACKAGE_MIGRATIONS
from shared_db.ops import migrate
from shared_db.ops.chains import CHAINS
from shared_db.ops.scratch import create_database, drop_database
from shared_db.ops.targets import Target
from shared_db.studio.app import create_app
from shared_db.studio.query import encode_cursor
from shared_db.studio.security import COOKIE, Guard
from shared_db.url import parse_database_url

NAME = "bench_studio"
HASH = "$2b$10$OdhEnw1aSDR5jKbbmYrmQOx49.Ls4ADFB2EKegiaSL3lg.1Iq7uZy"
LOAD = """
INSERT INTO users (email, password_hash, name, role)
SELECT 'user' || n || '@example.com', %(hash)s, 'User ' || n, 'CUSTOMER'
FROM generate_series(1, %(rows)s) AS n
"""
ORDERS = {"id": ("id", False), "email desc": ("email", True)}


def _load(url: str, rows: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(LOAD, {"hash": HASH, "rows": rows})
        conn.execute("ANALYZE users")


def _cursor_at(url: str, column: str, descending: bool, depth: int) -> str:
    """The cursor of the page that starts after row ``depth`` in this order."""
    direction = "DESC" if descending else "ASC"
    order = f"{column} {direction}, id {direction}" if column != "id" else f"id {direction}"
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT {column}, id FROM users ORDER BY {order} "  # noqa: S608
                           "OFFSET %s LIMIT 1", (depth - 1,)).fetchone()
    assert row is not None, "fewer rows than the depth"
    return encode_cursor((row[0], row[1]))


async def _time(client: httpx.AsyncClient, paths: dict[str, str], ops: int,
                ) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(ops):
        for name, path in paths.items():
            started = time.perf_counter()
            answer = await client.get(path)
            times[name].append((time.perf_counter() - started) * 1000)
            assert answer.status_code == 200, answer.text[:200]
    return times


async def run(url: str, depth: int, ops: int) -> dict[str, dict[str, float]]:
    settings = load_settings({"DATABASE_URL": url})
    guard = Guard.for_address("127.0.0.1", 5555, read_only=True)
    results: dict[str, dict[str, float]] = {}
    async with Database(settings) as db:
        app = create_app(settings, guard, db)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://127.0.0.1:5555",
                                     cookies={COOKIE: guard.token}) as client:
            for label, (column, descending) in ORDERS.items():
                query = f"sort={column}&dir={'desc' if descending else 'asc'}"
                cursor = _cursor_at(url, column, descending, depth)
                paths = {"first": f"/t/users?{query}",
                         "deep": f"/t/users?{query}&after={cursor}"}
                await _time(client, paths, 20)  # warm-up: prepared statements, caches
                times = await _time(client, paths, ops)
                results[label] = {f"{name}_{stat}": value for name, found in times.items()
                                  for stat, value in _stats(found).items()}
    return results


def _stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50": statistics.median(ordered), "p95": ordered[int(len(ordered) * 0.95) - 1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--depth", type=int, default=50_000)
    parser.add_argument("--ops", type=int, default=200, help="requests per page and order")
    args = parser.parse_args()
    server = parse_database_url(os.environ.get("DATABASE_URL")
                                or devserver.start(Path(".shared-db")))
    drop_database(server, NAME)
    target = create_database(server, NAME)
    try:
        migrate.deploy(Target("shared", target, CHAINS), PACKAGE_MIGRATIONS)
        _load(target.libpq_url(), args.rows)
        results: dict[str, Any] = asyncio.run(run(target.libpq_url(), args.depth, args.ops))
    finally:
        drop_database(server, NAME)
    print(f"studio table page, {args.rows:,} users, {args.ops} requests each (ms)")
    for label, r in results.items():
        print(f"  sort {label:10}: first page p50 {r['first_p50']:6.2f} p95 {r['first_p95']:6.2f}"
              f" | depth {args.depth:,} p50 {r['deep_p50']:6.2f} p95 {r['deep_p95']:6.2f}"
              f" | ratio {r['deep_p50'] / r['first_p50']:.2f}x")


if __name__ == "__main__":
    main()
