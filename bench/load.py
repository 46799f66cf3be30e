"""Mixed load with a ledger: ``python -m bench.load [--seconds N] [--workers N] [--faults]``.

32 async workers (by default) share a pool smaller than they are and, until the time is up, do
what the services do: logins with a device, a session and token rotation; payment creation and
status transitions; paginated reads; audit and config writes. Each worker keeps a ledger of what
it was told succeeded; ``check`` compares the database with it afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import psycopg

from shared_db import Database, NewUser, load_settings
from shared_db.enums import PaymentStatus
from shared_db.errors import ConflictError, InvalidTransitionError
from shared_db.passwords import hash_password
from shared_db.payments.status import TRANSITIONS

PASSWORD = "load-password"
EXPECTED = (ConflictError, InvalidTransitionError)


@dataclass
class Ledger:
    payments: dict[uuid.UUID, tuple[uuid.UUID, Decimal]] = field(default_factory=dict)
    status: dict[uuid.UUID, str] = field(default_factory=dict)
    transitions: int = 0
    expected_errors: Counter[str] = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))


async def _timed(ledger: Ledger, name: str, work: Any) -> Any:
    started = time.perf_counter()
    try:
        return await work
    finally:
        ledger.latencies[name].append((time.perf_counter() - started) * 1000)


async def _login(db: Database, ledger: Ledger, user: NewUser, rng: random.Random) -> None:
    found = await _timed(ledger, "login", db.users.verify_password(user.email, PASSWORD))
    assert found is not None
    device = await db.devices.register(found.id, f"dev-{found.id}-{rng.randrange(3)}")
    token = await db.tokens.issue(found.id)
    await db.sessions.open(found.id, device.id, refresh_token_id=token.record.id)
    await _timed(ledger, "rotate", db.tokens.rotate(token.token))


async def _pay(db: Database, ledger: Ledger, user_id: uuid.UUID, rng: random.Random) -> None:
    amount = Decimal(rng.randrange(100, 100_000)) / 100
    payment = await _timed(ledger, "create_payment", db.payments.create(
        user_id, amount, type="payment"))
    ledger.payments[payment.id] = (user_id, amount)
    ledger.status[payment.id] = "pending"


async def _move(db: Database, ledger: Ledger, rng: random.Random) -> None:
    if not ledger.status:
        return
    payment_id = rng.choice(list(ledger.status))
    allowed = sorted(s.value for s in TRANSITIONS[PaymentStatus(ledger.status[payment_id])])
    target = rng.choice(allowed) if allowed else "completed"  # a final status: refused
    try:
        moved = await _timed(ledger, "transition", db.payment_status.transition(
            payment_id, target))
    except EXPECTED as error:
        ledger.expected_errors[type(error).__name__] += 1
        return
    ledger.status[payment_id] = moved.status.value
    ledger.transitions += 1


async def _read(db: Database, ledger: Ledger, user_id: uuid.UUID) -> None:
    cursor = None
    while True:
        page = await _timed(ledger, "page", db.payments.page(user_id, limit=5, cursor=cursor))
        cursor = page.next_cursor
        if cursor is None:
            return


async def _admin(db: Database, ledger: Ledger, worker: int, n: int) -> None:
    await _timed(ledger, "config", db.config.set(f"load.worker.{worker}", n))


async def worker(db: Database, index: int, users: list[tuple[NewUser, uuid.UUID]],
                 deadline: float) -> Ledger:
    """One worker's loop; its payments are its own, so its ledger is exact."""
    rng, ledger, n = random.Random(index), Ledger(), 0
    while time.monotonic() < deadline:
        n += 1
        user, user_id = users[(index + n) % len(users)]
        roll = rng.random()
        if roll < 0.04:
            await _login(db, ledger, user, rng)
        elif roll < 0.40:
            await _pay(db, ledger, user_id, rng)
        elif roll < 0.75:
            await _move(db, ledger, rng)
        elif roll < 0.95:
            await _read(db, ledger, user_id)
        else:
            await _admin(db, ledger, index, n)
    return ledger


async def prepare(db: Database, count: int = 64) -> list[tuple[NewUser, uuid.UUID]]:
    hashed = hash_password(PASSWORD)
    users = [NewUser(email=f"load{i}-{uuid.uuid4().hex[:8]}@example.com", name=f"Load {i}",
                     role="CUSTOMER", password_hash=hashed) for i in range(count)]
    await db.users.create_many(users)
    found = [await db.users.get_by_email(u.email) for u in users]
    return [(u, f.id) for u, f in zip(users, found, strict=True) if f is not None]


async def run(db: Database, seconds: float, workers: int) -> tuple[Ledger, float]:
    users = await prepare(db)
    deadline = time.monotonic() + seconds
    started = time.perf_counter()
    ledgers = await asyncio.gather(*(worker(db, i, users, deadline) for i in range(workers)))
    elapsed = time.perf_counter() - started
    total = Ledger()
    for part in ledgers:
        total.payments.update(part.payments)
        total.status.update(part.status)
        total.transitions += part.transitions
        total.expected_errors.update(part.expected_errors)
        for name, values in part.latencies.items():
            total.latencies[name].extend(values)
    return total, elapsed


def check(url: str, ledger: Ledger) -> None:
    """The database holds exactly what the workers were told succeeded."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT id, user_id, amount, status::text FROM payments").fetchall()
        stored = {r[0]: (r[1], r[2], r[3]) for r in rows if r[0] in ledger.payments}
        assert len(stored) == len(ledger.payments), "a created payment is missing"
        for payment_id, (user_id, amount) in ledger.payments.items():
            assert stored[payment_id] == (user_id, amount, ledger.status[payment_id])
        per_user: Counter[uuid.UUID] = Counter(u for u, _ in ledger.payments.values())
        sums: dict[uuid.UUID, Decimal] = defaultdict(Decimal)
        for user_id, amount in ledger.payments.values():
            sums[user_id] += amount
        for user_id, count, total in conn.execute(
                "SELECT user_id, count(*), sum(amount) FROM payments WHERE id = ANY(%s) "
                "GROUP BY user_id", (list(ledger.payments),)):
            assert (count, total) == (per_user[user_id], sums[user_id])
        ids = list(ledger.payments)
        moves = conn.execute("SELECT count(*) FROM payment_transactions WHERE payment_id = "
                             "ANY(%s)", (ids,)).fetchone()
        audits = conn.execute("SELECT count(*) FROM audit_logs WHERE action = "
                              "'payment.status_changed' AND resource_id = ANY(%s)",
                              ([str(i) for i in ids],)).fetchone()
        assert moves == (ledger.transitions,) and audits == (ledger.transitions,)


def summary(ledger: Ledger, elapsed: float) -> str:
    operations = sum(len(v) for v in ledger.latencies.values())
    lines = [f"{operations} timed operations in {elapsed:.1f} s: {operations / elapsed:.0f} ops/s; "
             f"{len(ledger.payments)} payments, {ledger.transitions} transitions, expected "
             f"refusals {dict(ledger.expected_errors)}"]
    for name, values in sorted(ledger.latencies.items()):
        ordered = sorted(values)
        lines.append(f"  {name:15} n={len(values):6}  p50 {statistics.median(ordered):7.2f} ms"
                     f"  p99 {ordered[int(len(ordered) * 0.99) - 1]:7.2f} ms")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--pool", type=int, default=8)
    parser.add_argument("--faults", action="store_true",
                        help="restart and crash the server during the run (bench/faults.py)")
    parser.add_argument("--pgbouncer", action="store_true",
                        help="with --faults: through a real PgBouncer in front of the server")
    args = parser.parse_args()
    if args.pgbouncer and not args.faults:
        parser.error("--pgbouncer goes with --faults")
    if args.faults:
        from bench.faults import main as with_faults
        with_faults(args.seconds, args.workers, args.pool, args.pgbouncer)
        return
    from bench.__main__ import BENCH_DB, _server_url
    from shared_db.config import PACKAGE_MIGRATIONS
    from shared_db.ops import migrate
    from shared_db.ops.scratch import create_database, drop_database
    from shared_db.ops.targets import resolve_targets
    from shared_db.url import parse_database_url

    server = parse_database_url(_server_url())
    drop_database(server, BENCH_DB + "_load")
    url = create_database(server, BENCH_DB + "_load").libpq_url()
    settings = load_settings({"DATABASE_URL": f"{url}?connection_limit={args.pool}",
                              "SHARED_DB_ENV": "production"})
    migrate.deploy(resolve_targets(settings)[0], PACKAGE_MIGRATIONS)

    async def go() -> tuple[Ledger, float]:
        async with Database(settings) as db:
            return await run(db, args.seconds, args.workers)

    try:
        ledger, elapsed = asyncio.run(go())
        check(url, ledger)
        print(summary(ledger, elapsed))
        print("ledger check: the database matches every worker's ledger")
    finally:
        drop_database(server, BENCH_DB + "_load")


if __name__ == "__main__":
    main()
