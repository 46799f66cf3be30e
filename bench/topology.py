"""What one database per service costs: ``python -m bench.topology [--ops N] [--rounds N]``.

On the embedded server (or ``DATABASE_URL``'s), in one run: a shared database and four
per-service databases, all migrated, in three topologies: the shared database directly, the same
shared database through a real PgBouncer in transaction pooling mode (``bench.bouncer``, started
for the run), and the four per-service databases. Two writes that cross services are timed, each
by shared-db and by hand-written psycopg doing the same statements, so every ratio is against the
raw driver in the same topology and the same run:

* T1 user + audit row + profile (the guide's 6.1): shared, one transaction; per service, three
  databases and two-phase commit (PREPARE TRANSACTION x3, COMMIT PREPARED x3);
* T2 a payment for a live user: shared, one ``INSERT ... SELECT``; per service, the user locked
  ``FOR KEY SHARE`` in auth and the payment inserted in payments, two-phase.

Through PgBouncer both contenders lose server-side prepared statements, as they must there:
shared-db by ``?pgbouncer=true`` on its URL, psycopg by ``prepare_threshold=None``. Directly,
both prepare (shared-db always, psycopg once a statement has run a few times).

Contenders take turns chunk by chunk so drift on the machine hits all of them alike.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

from bench.bouncer import client_url, pgbouncer
from shared_db import Database, devserver, load_settings
from shared_db.config import PACKAGE_MIGRATIONS
from shared_db.ops import migrate
from shared_db.ops.scratch import create_database, drop_database
from shared_db.ops.targets import Target
from shared_db.passwords import hash_password
from shared_db.profile.service import create_user_with_profile
from shared_db.services import SERVICES
from shared_db.url import parse_database_url

HASH = hash_password("bench-password")
Op = Callable[[int], Awaitable[Any]]


async def _raw_user(conns: dict[str, psycopg.AsyncConnection[Any]], i: int, tag: str) -> None:
    user_id = uuid.uuid4()
    steps = [("auth", "INSERT INTO users (id, email, password_hash, name, role) "
                      "VALUES (%s, %s, %s, 'B', 'CUSTOMER')", (user_id, f"{tag}{i}@r.io", HASH)),
             ("admin", "INSERT INTO audit_logs (user_id, action, resource_type, resource_id) "
                       "VALUES (%s, 'user.created', 'user', %s)", (user_id, str(user_id))),
             ("profile", "INSERT INTO user_profiles (user_id) VALUES (%s)", (user_id,))]
    await _raw_transaction(conns, steps)


async def _raw_payment(conns: dict[str, psycopg.AsyncConnection[Any]], user_id: uuid.UUID,
                       ) -> None:
    if conns["auth"] is conns["payments"]:
        await conns["auth"].execute(
            "INSERT INTO payments (user_id, amount, status, type) SELECT id, 1.50, 'pending', "
            "'payment' FROM users WHERE id = %s AND deleted_at IS NULL RETURNING *", (user_id,))
        return
    steps = [("auth", "SELECT id FROM users WHERE id = %s AND deleted_at IS NULL "
                      "FOR KEY SHARE", (user_id,)),
             ("payments", "INSERT INTO payments (user_id, amount, status, type) VALUES "
                          "(%s, 1.50, 'pending', 'payment') RETURNING *", (user_id,))]
    await _raw_transaction(conns, steps)


async def _raw_transaction(conns: dict[str, psycopg.AsyncConnection[Any]],
                           steps: list[tuple[str, str, tuple[Any, ...]]]) -> None:
    used = list(dict.fromkeys(conns[s] for s, _, _ in steps))
    for conn in used:
        await conn.execute("BEGIN")
    for service, statement, params in steps:
        await conns[service].execute(statement, params)
    if len(used) == 1:
        await used[0].execute("COMMIT")
        return
    gid = uuid.uuid4().hex
    for n, conn in enumerate(used):
        await conn.execute(psycopg.sql.SQL("PREPARE TRANSACTION {}").format(f"{gid}:{n}"))
    for n, conn in enumerate(used):
        await conn.execute(psycopg.sql.SQL("COMMIT PREPARED {}").format(f"{gid}:{n}"))


async def _measure(contenders: dict[str, Op], ops: int, rounds: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in contenders}
    i = 0
    for _ in range(rounds):
        for start in range(0, ops, 50):
            for name, op in contenders.items():
                for _ in range(min(50, ops - start)):
                    i += 1
                    began = time.perf_counter_ns()
                    await op(i)
                    times[name].append((time.perf_counter_ns() - began) / 1000)
    return {name: statistics.median(values) for name, values in times.items()}


async def run(server_url: str, ops: int, rounds: int) -> dict[str, dict[str, float]]:
    server = parse_database_url(server_url)
    names = {s: f"bench_topology_{s}" for s in (*SERVICES, "shared")}
    for name in names.values():
        drop_database(server, name)
    urls = {s: create_database(server, n).libpq_url() for s, n in names.items()}
    try:
        migrate.deploy(Target("shared", parse_database_url(urls["shared"]),
                              (*SERVICES, "links")), PACKAGE_MIGRATIONS)
        for s in SERVICES:
            migrate.deploy(Target(s, parse_database_url(urls[s]), (s,)), PACKAGE_MIGRATIONS)
        with pgbouncer(server) as port:
            bounced = client_url(server, port, names["shared"])
            layouts = {"shared": dict.fromkeys(SERVICES, urls["shared"]),
                       "pgbouncer": dict.fromkeys(SERVICES, bounced),
                       "per-service": {s: urls[s] for s in SERVICES}}
            results = {}
            for layout, by_service in layouts.items():
                results[layout] = await _run_layout(layout, by_service, ops, rounds)
        return results
    finally:
        for name in names.values():
            drop_database(server, name)


async def _run_layout(layout: str, by_service: dict[str, str], ops: int,
                      rounds: int) -> dict[str, float]:
    bounced = layout == "pgbouncer"
    params = "?connection_limit=4&pgbouncer=true" if bounced else "?connection_limit=4"
    if layout == "per-service":
        env = {"SHARED_DB_TOPOLOGY": "per-service",
               **{f"{s.upper()}_DATABASE_URL": u + params for s, u in by_service.items()}}
    else:
        env = {"DATABASE_URL": by_service["auth"] + params}
    # A statement prepared on one server connection is unknown on the next PgBouncer hands out.
    raw_args: dict[str, Any] = {"prepare_threshold": None} if bounced else {}
    opened = {u: await psycopg.AsyncConnection.connect(u, autocommit=True, **raw_args)
              for u in dict.fromkeys(by_service.values())}
    conns = {s: opened[u] for s, u in by_service.items()}
    try:
        async with Database(load_settings(env)) as db:
            user, _ = await create_user_with_profile(db, email=f"payer.{layout}@r.io", name="P",
                                                     role="CUSTOMER", password_hash=HASH)
            t1 = await _measure({
                "shared_db": lambda i: create_user_with_profile(
                    db, email=f"s{i}.{layout}@b.io", name="B", role="CUSTOMER",
                    password_hash=HASH),
                "psycopg": lambda i: _raw_user(conns, i, f"r.{layout}.")}, ops, rounds)
            t2 = await _measure({
                "shared_db": lambda i: db.payments.create(user.id, Decimal("1.50"),
                                                          type="payment"),
                "psycopg": lambda i: _raw_payment(conns, user.id)}, ops, rounds)
    finally:
        for conn in opened.values():
            await conn.close()
    return {"T1_shared_db": t1["shared_db"], "T1_psycopg": t1["psycopg"],
            "T2_shared_db": t2["shared_db"], "T2_psycopg": t2["psycopg"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=500, help="operations per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL") or devserver.start(Path(".shared-db"))
    results = asyncio.run(run(url, args.ops, args.rounds))
    print("p50 in µs (ratio to raw psycopg in the same topology)")
    for layout, r in results.items():
        for t in ("T1", "T2"):
            ours, raw = r[f"{t}_shared_db"], r[f"{t}_psycopg"]
            print(f"  {layout:12} {t}: shared_db {ours:8.0f}  psycopg {raw:8.0f}  "
                  f"({ours / raw:.2f}x)")
    for layout in ("pgbouncer", "per-service"):
        for t in ("T1", "T2"):
            cost = results[layout][f"{t}_shared_db"] / results["shared"][f"{t}_shared_db"]
            print(f"  {layout} / shared, shared_db {t}: {cost:.2f}x")


if __name__ == "__main__":
    main()
