"""Writes under server faults: ``python -m bench.load --faults [--pgbouncer] [--seconds N]``.

Workers create payments and users with their profiles, each call with an idempotency key of
its own, and retry a call that failed with ``DatabaseUnavailableError`` (``OutcomeUnknownError``
included) with the same key until it succeeds. Meanwhile the server is restarted (``pg_ctl -m
fast``) at a third of the run and crashed (``-m immediate``) at two thirds. Afterwards the
database must hold every acknowledged write once: nothing lost, nothing doubled, nothing that
was not attempted, no user without its profile. Each write carries its key in its row, which is
how doubles would show.

The server must be one this process may stop: a private embedded server (``DATABASE_URL``
unset), or the local Debian cluster on port 5432 as root (``pg_ctlcluster``). Its database runs
with ``synchronous_commit=on``: without it a crash may lose acknowledged commits by design.
With ``--pgbouncer`` the client goes through a real PgBouncer in transaction pooling mode, which
stays up while the server behind it goes down and comes back.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Literal

import psycopg

from bench import bouncer
from shared_db import Database, devserver
from shared_db.errors import DatabaseUnavailableError, PoolTimeoutError
from shared_db.profile.service import create_user_with_profile
from shared_db.url import ConnectionSettings, parse_database_url

TAIL = 2.0
"""Seconds the load goes on at least after the last fault has ended."""
Fault = tuple[str, Callable[[], float]]
"""A name, and what does it: returns (monotonic time) when the service was back."""


@dataclass
class Server:
    """A server that may be stopped in either of PostgreSQL's ways and started again: a
    private embedded one (``home``) or a Debian cluster (``cluster``: version, name)."""

    url: str
    home: Path | None = None
    cluster: tuple[str, str] | None = None

    def stop(self, mode: Literal["fast", "immediate"]) -> None:
        """``fast`` (a restart: sessions are told and closed) or ``immediate`` (a crash)."""
        if self.home is not None:
            devserver.stop(self.home, mode)
        else:
            assert self.cluster is not None
            subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *self.cluster, "stop",
                            "-m", mode], check=True, capture_output=True)

    def start(self) -> None:
        if self.home is not None:
            devserver.start(self.home)
        else:
            assert self.cluster is not None
            subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *self.cluster,
                            "start"], check=True, capture_output=True)
        wait_for(self.url)

    def restart(self, mode: Literal["fast", "immediate"] = "fast") -> None:
        self.stop(mode)
        self.start()


def wait_for(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with psycopg.connect(url, connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def system_cluster(conn: ConnectionSettings) -> tuple[str, str] | None:
    """The Debian cluster serving ``conn``, when this process may control it."""
    if os.geteuid() != 0 or shutil.which("pg_ctlcluster") is None:
        return None
    if conn.url.host not in ("127.0.0.1", "localhost") or (conn.url.port or 5432) != 5432:
        return None
    versions = sorted(Path("/etc/postgresql").glob("*/main"))
    return (versions[-1].parent.name, "main") if versions else None


@dataclass
class FaultLedger:
    attempted: dict[str, str] = field(default_factory=dict)
    """key -> "payment" or "user"."""
    acknowledged: dict[str, uuid.UUID] = field(default_factory=dict)
    failures: Counter[str] = field(default_factory=Counter)
    successes: list[float] = field(default_factory=list)
    faults: list[tuple[str, float, float]] = field(default_factory=list)
    """(fault, when it began, when the service was back)."""


async def _write(db: Database, ledger: FaultLedger, kind: str, key: str,
                 user_id: uuid.UUID) -> None:
    while True:
        try:
            if kind == "payment":
                made = await db.payments.create(user_id, Decimal("1.00"), type="payment",
                                                metadata={"key": key}, idempotency_key=key)
                ledger.acknowledged[key] = made.id
            else:
                user, _ = await create_user_with_profile(
                    db, email=f"{key}@example.com", name="Fault", role="CUSTOMER",
                    password_hash=HASH, profile={"bio": key}, idempotency_key=key)
                ledger.acknowledged[key] = user.id
            ledger.successes.append(time.monotonic())
            return
        except (DatabaseUnavailableError, PoolTimeoutError) as error:
            ledger.failures[type(error).__name__] += 1
            await asyncio.sleep(0.05)  # the same key again: exactly once, whatever happened


HASH = "$2b$10$" + "a" * 53  # a well-formed bcrypt hash; nobody logs in here


async def _worker(db: Database, ledger: FaultLedger, user_id: uuid.UUID, index: int,
                  deadline: list[float]) -> None:
    n = 0
    while time.monotonic() < deadline[0]:
        n += 1
        kind = "user" if n % 4 == 0 else "payment"
        key = f"w{index}-{n}-{uuid.uuid4().hex[:8]}"
        ledger.attempted[key] = kind
        await _write(db, ledger, kind, key, user_id)


def restarts(server: Server) -> list[Fault]:
    """A fast restart, then a crash (an immediate stop), of ``server``."""
    def restart(mode: Literal["fast", "immediate"]) -> Callable[[], float]:
        def go() -> float:
            server.restart(mode)
            return time.monotonic()
        return go
    return [("restart (fast)", restart("fast")), ("crash (immediate)", restart("immediate"))]


async def run(db: Database, faults: Sequence[Fault], seconds: float,
              workers: int) -> FaultLedger:
    """The write load, with the faults spread evenly over ``seconds`` (at 1/3 and 2/3 for
    two)."""
    ledger = FaultLedger()
    owner = await db.users.create(email=f"owner-{uuid.uuid4().hex[:8]}@example.com",
                                  password_hash=HASH, name="Owner", role="CUSTOMER")
    started = time.monotonic()
    deadline = [float("inf")]  # set once the faults are over
    tasks = [asyncio.create_task(_worker(db, ledger, owner.id, i, deadline))
             for i in range(workers)]
    try:
        for i, (name, fault) in enumerate(faults, start=1):
            await asyncio.sleep(max(0.0, started + seconds * i / (len(faults) + 1)
                                    - time.monotonic()))
            began = time.monotonic()
            back = await asyncio.to_thread(fault)
            ledger.faults.append((name, began, back))
    finally:
        # The load lasts ``seconds``, and at least TAIL more after the last fault, however
        # long the faults took: each is followed by writes to time. A fault that failed
        # still lets the workers finish before the client closes.
        deadline[0] = max(started + seconds, time.monotonic() + TAIL)
        await asyncio.gather(*tasks)
    return ledger


def check(url: str, ledger: FaultLedger) -> dict[str, int]:
    """Every acknowledged write is there exactly once, and nothing else; the counts."""
    with psycopg.connect(url) as conn:
        payments = Counter(key for (key,) in conn.execute(
            "SELECT metadata->>'key' FROM payments WHERE metadata ? 'key'"))
        users = Counter(email.split("@")[0] for (email,) in conn.execute(
            "SELECT email FROM users WHERE name = 'Fault'"))
        half = conn.execute("SELECT count(*) FROM users u WHERE name = 'Fault' AND NOT EXISTS "
                            "(SELECT 1 FROM user_profiles p WHERE p.user_id = u.id)").fetchone()
    stored = payments + users
    acknowledged = set(ledger.acknowledged)
    counts = {
        "attempted": len(ledger.attempted), "acknowledged": len(acknowledged),
        "lost": len(acknowledged - set(stored)),
        "doubled": sum(1 for n in stored.values() if n > 1),
        "unattempted": len(set(stored) - set(ledger.attempted)),
        "half users": int(half[0]) if half else 0,
    }
    assert counts["lost"] == counts["doubled"] == counts["unattempted"] == 0, counts
    assert counts["half users"] == 0, counts
    assert counts["acknowledged"] == counts["attempted"], counts  # every retry got through
    return counts


def recovery(ledger: FaultLedger) -> list[str]:
    lines = []
    for name, began, back in ledger.faults:
        first = min((t for t in ledger.successes if t > back), default=None)
        after = "none" if first is None else f"{first - back:.3f} s"
        lines.append(f"  {name}: back {back - began:.2f} s after it began; first successful "
                     f"write {after} after it was back")
    return lines


def summary(ledger: FaultLedger, counts: dict[str, int]) -> str:
    return "\n".join([
        "writes under faults: " + ", ".join(f"{k} {v}" for k, v in counts.items()),
        f"  failed calls (each retried with its key): {dict(ledger.failures) or 'none'}",
        *recovery(ledger)])


@contextmanager
def reached(url: str, pgbouncer: bool, query: str) -> Iterator[str]:
    """The URL, with ``query``, a client reaches the database of ``url`` by: ``url`` itself, or a
    real PgBouncer in transaction pooling mode in front of its server (``pgbouncer=true``),
    which stays up while the server behind it is restarted and crashed."""
    if not pgbouncer:
        yield f"{url}?{query}"
        return
    made = parse_database_url(url)
    # Server connections are checked before each reuse: the server restarts under them, and
    # an unchecked dead one fails the next transaction. A login refused while the server was
    # down is tried again after 1 s, not PgBouncer's default 15.
    with bouncer.pgbouncer(made, server_check_delay=0, server_login_retry=1) as port:
        yield f"{bouncer.client_url(made, port, made.database)}?{query}&pgbouncer=true"


def server_for(url: str | None, home: Path) -> Server:
    """A server the fault run may stop: private embedded, or the local Debian cluster."""
    if url is None:
        return Server(parse_database_url(devserver.start(home)).with_database(
            "postgres").libpq_url(), home=home)
    conn = parse_database_url(url)
    cluster = system_cluster(conn)
    if cluster is None:
        raise SystemExit("--faults stops the server: unset DATABASE_URL (a private embedded "
                         "server is used), or run as root against the local cluster on 5432")
    return Server(conn.with_database("postgres").libpq_url(), cluster=cluster)


def main(seconds: float, workers: int, pool: int, pgbouncer: bool = False) -> None:
    """The fault run; with ``pgbouncer``, the client reaches the server through a real
    PgBouncer in transaction pooling mode (``pgbouncer=true``), which stays up while the server
    behind it is restarted and crashed."""
    import logging
    import tempfile

    from shared_db import load_settings
    from shared_db.config import PACKAGE_MIGRATIONS
    from shared_db.ops import migrate
    from shared_db.ops.chains import CHAINS
    from shared_db.ops.scratch import create_database, drop_database
    from shared_db.ops.targets import Target

    # The pool logs each failed reconnection while the server is down, which is the point here.
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="shared-db-faults-") as home:
        Path(home).chmod(0o755)  # the embedded server's own user reads it when run as root
        server = server_for(os.environ.get("DATABASE_URL") or None, Path(home) / "server")
        admin = parse_database_url(server.url)
        name = f"shared_db_faults_{uuid.uuid4().hex[:8]}"
        made = create_database(admin, name)
        try:
            with psycopg.connect(made.libpq_url(), autocommit=True) as conn:
                conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = on')
            migrate.deploy(Target("shared", made, CHAINS), PACKAGE_MIGRATIONS)
            with reached(made.libpq_url(), pgbouncer, f"connection_limit={pool}") as url:
                settings = load_settings({"DATABASE_URL": url,
                                          "SHARED_DB_ENV": "production"})

                async def go() -> FaultLedger:
                    async with Database(settings) as db:
                        return await run(db, restarts(server), seconds, workers)

                ledger = asyncio.run(go())
            print(summary(ledger, check(made.libpq_url(), ledger)))
        finally:
            drop_database(admin, name)
            if server.home is not None:
                devserver.stop(server.home)
